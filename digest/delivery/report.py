"""What a send tells about itself: a ``Progress`` it calls as it goes, a DeliveryReport at the end.

The displays (a rich bar, periodic lines) live with the CLI in digest.cli.progress; neither
the report nor the progress knows about the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from digest.models import DeliveryStatus

__all__ = ["DeliveryReport", "NoProgress", "Progress", "handed_over"]


@dataclass
class DeliveryReport:
    """What one send did: counts of this run, the ledger after it, and why it paused if it did."""

    edition_key: str
    sent: int = 0
    deferred: int = 0  # rows still waiting for a retry when the run ended
    failed: int = 0
    unknown: int = 0  # outcomes this run could not know, plus crashed runs' rows it found
    skipped: int = 0  # unsubscribed mid-send, or nothing for their topics
    suppressed: int = 0  # addresses the server called bad (5.1.x), now bounced
    retried_unknown: int = 0
    retried_failed: int = 0  # failed rows queued again by --retry-failed
    accepted_unknown: int = 0  # unknown rows an admin counted as sent (--accept-unknown)
    contents: int = 0  # distinct renders (per selection, not per subscriber)
    paused: str | None = None
    dry_run: bool = False
    would_send: int = 0
    ledger: dict[str, int] = field(default_factory=dict)
    outbox: Path | None = None  # the file transport's folder: nothing was emailed
    # One line naming every delivery (any edition) whose outcome is still unknown, if any.
    unresolved: str | None = None

    @property
    def ok(self) -> bool:
        """False when anything failed, is unknown (now or left from a crash), or the run paused."""
        return not (self.failed or self.unknown or self.paused or self.unresolved)

    def summary(self) -> str:
        """One line for people: what happened to this edition."""
        if self.dry_run:
            return (
                f"dry run of {self.edition_key}: would send {self.would_send} emails "
                f"({self.contents} distinct contents); nothing was sent"
            )
        line = (
            f"{self.edition_key}: {_count(handed_over(self.outbox), self.sent)}, deferred {self.deferred}, "
            f"failed {self.failed}, unknown {self.unknown}"
        )
        if self.skipped:
            line += f", skipped {self.skipped}"
        if self.suppressed:
            line += f" ({self.suppressed} bad addresses suppressed)"
        if self.paused:
            line += f"; PAUSED: {self.paused}"
        return line


def handed_over(outbox: Path | None) -> str:
    """How to say a message was handed over: "sent", or "written to ./outbox" (file transport)."""
    if outbox is None:
        return "sent"
    shown = str(outbox)
    if not outbox.is_absolute() and not shown.startswith("."):
        shown = f"./{shown}"
    return f"written to {shown}"


def _count(verb: str, n: int) -> str:
    return f"{verb} {n}" if verb == "sent" else f"{verb}: {n}"


class Progress(Protocol):
    """Where the loop reports as it goes (a rich bar, periodic log lines, or nothing)."""

    def start(self, total: int) -> None: ...
    def advance(self, status: DeliveryStatus) -> None: ...
    def finish(self, report: DeliveryReport) -> None: ...


class NoProgress:
    """Reports nothing: for library callers and the scheduler, whose logs say enough."""

    def start(self, total: int) -> None:
        """Ignore the total."""

    def advance(self, status: DeliveryStatus) -> None:
        """Ignore one finished row."""

    def finish(self, report: DeliveryReport) -> None:
        """Ignore the end."""
