"""Why a delivery failed, as the ledger keeps it: a FailureKind and the SMTP reply code.

`digest status` groups failed rows by these and `digest send --retry-failed` decides with
them which rows may go again: all but hard bounces (5.1.x, the mailbox does not exist).
"""

from __future__ import annotations

import re

from digest.delivery.transports import PermanentFailure, TemporaryFailure, TransportError
from digest.models import FailureKind

__all__ = ["failure_of"]

# "550 5.7.1 Relaying denied": the basic code, then the enhanced one (RFC 3463) if given.
_REPLY = re.compile(r"^(\d{3})(?:\s+([245]\.\d{1,3}\.\d{1,3}))?")
_TOO_BIG = ("5.2.2", "5.2.3", "5.3.4")  # mailbox full, message too long, too big for system


def failure_of(exc: TransportError) -> tuple[FailureKind, str | None]:
    """The cause of a failed send and its reply code, e.g. ``(POLICY, "550 5.7.1")``."""
    match = _REPLY.match(str(exc))
    code = match.group(1) if match else (str(exc.code) if exc.code else "")
    enhanced = (match.group(2) if match else None) or ""
    shown = f"{code} {enhanced}".strip() or None
    if isinstance(exc, TemporaryFailure):
        return FailureKind.TEMPORARY, shown
    if (isinstance(exc, PermanentFailure) and exc.suppress) or enhanced.startswith("5.1."):
        return FailureKind.MAILBOX, shown
    if enhanced.startswith("5.7."):
        return FailureKind.POLICY, shown
    if code == "552" or enhanced in _TOO_BIG:
        return FailureKind.SIZE, shown
    return FailureKind.REJECTED, shown
