"""What an SMTP reply that is not success means for the ledger: a TransportError kind."""

from __future__ import annotations

import re

from digest.delivery.transports.base import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    TransportError,
)

__all__ = ["classify_reply"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def classify_reply(code: int, text: str, *, stage: str = "data") -> TransportError:
    """Turn an SMTP reply that is not success into the TransportError it means.

    4xx defer; 5.1.x (bad mailbox) fails and suppresses; other 5xx fail without suppressing;
    auth replies and a refused sender (our own configuration) pause the run.
    """
    detail = f"{code} {text.strip()}"[:300]
    enhanced = _ENHANCED.match(text or "")
    if code in (530, 534, 535, 538) or stage in ("auth", "connect", "tls"):
        return ConnectionFailure(f"SMTP server refused us at {stage}: {detail}", code)
    if 400 <= code < 500:
        return TemporaryFailure(detail, code)
    if stage == "mail" and 500 <= code < 600:
        # A refused envelope sender is our configuration, not the recipient's address.
        return ConnectionFailure(f"SMTP server refused the sender address: {detail}", code)
    suppress = stage in ("rcpt", "data") and bool(
        enhanced and enhanced.group(1) == "5" and enhanced.group(2) == "1"
    )
    return PermanentFailure(detail, code, suppress=suppress)
