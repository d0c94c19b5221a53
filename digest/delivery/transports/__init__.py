"""How a rendered message leaves: SMTP, a file outbox, or memory."""

from digest.delivery.transports.smtp import (
    EDITION_HEADER,
    ConnectionFailure,
    FileTransport,
    MemoryTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
    TransportError,
    UnknownOutcome,
    classify_reply,
    make_transport,
)

__all__ = [
    "EDITION_HEADER",
    "ConnectionFailure",
    "FileTransport",
    "MemoryTransport",
    "PermanentFailure",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "TransportError",
    "UnknownOutcome",
    "classify_reply",
    "make_transport",
]
