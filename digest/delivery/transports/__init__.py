"""How a rendered message leaves: SMTP, a file outbox, or memory, all behind one Transport.

``make_transport`` builds the one DIGEST_TRANSPORT names; with DIGEST_DKIM_KEY_FILE set its
messages are DKIM-signed on the way in, whatever the transport.
"""

from __future__ import annotations

import threading

from digest.config import Settings
from digest.delivery.transports.base import (
    EDITION_HEADER,
    STOPPING,
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    TransportError,
    UnknownOutcome,
    Withdrawn,
)
from digest.delivery.transports.local import FileTransport, MemoryTransport
from digest.delivery.transports.replies import classify_reply
from digest.delivery.transports.signing import DkimSigned
from digest.delivery.transports.smtp import SmtpTransport

__all__ = [
    "EDITION_HEADER",
    "STOPPING",
    "ConnectionFailure",
    "DkimSigned",
    "FileTransport",
    "MemoryTransport",
    "PermanentFailure",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "TransportError",
    "UnknownOutcome",
    "Withdrawn",
    "classify_reply",
    "make_transport",
]


def make_transport(
    settings: Settings, *, edition_key: str = "messages", stopping: threading.Event | None = None
) -> Transport:
    """The transport DIGEST_TRANSPORT names, DKIM-signing when DIGEST_DKIM_KEY_FILE is set.

    ``stopping`` is the stop hook to share (the daemon sets it on SIGTERM).
    """
    signer = None
    if settings.dkim_key_file is not None:  # checked first: a bad key stops before connecting
        from digest.mail.dkim import DkimSigner

        signer = DkimSigner.from_settings(settings)
    kind = str(settings.transport)
    transport: Transport
    if kind == "smtp":
        transport = SmtpTransport.from_settings(settings, stopping=stopping)
    elif kind == "memory":
        transport = MemoryTransport(timeout=settings.smtp_timeout, stopping=stopping)
    else:
        transport = FileTransport(
            settings.outbox, edition_key=edition_key, timeout=settings.smtp_timeout,
            stopping=stopping,
        )  # fmt: skip
    return DkimSigned(transport, signer) if signer else transport
