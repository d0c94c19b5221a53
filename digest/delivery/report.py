"""How a send tells people about itself: progress while it runs, a DeliveryReport at the end.

The send loop calls a ``Progress`` (a rich bar on a terminal, a log line every few seconds
elsewhere, or nothing) and returns a ``DeliveryReport``; neither knows about the ledger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import click

from digest.models import DeliveryStatus

__all__ = ["BarProgress", "DeliveryReport", "LogProgress", "NoProgress", "Progress"]


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
    contents: int = 0  # distinct renders (per selection, not per subscriber)
    paused: str | None = None
    dry_run: bool = False
    would_send: int = 0
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when anything failed, is unknown, or the run paused."""
        return not (self.failed or self.unknown or self.paused)

    def summary(self) -> str:
        """One line for people: what happened to this edition."""
        if self.dry_run:
            return (
                f"dry run of {self.edition_key}: would send {self.would_send} emails "
                f"({self.contents} distinct contents); nothing was sent"
            )
        line = (
            f"{self.edition_key}: sent {self.sent}, deferred {self.deferred}, "
            f"failed {self.failed}, unknown {self.unknown}"
        )
        if self.skipped:
            line += f", skipped {self.skipped}"
        if self.suppressed:
            line += f" ({self.suppressed} bad addresses suppressed)"
        if self.paused:
            line += f"; PAUSED: {self.paused}"
        return line


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


class BarProgress:
    """A rich progress bar with rate and ETA, for a terminal."""

    def __init__(self) -> None:
        # rich loads only when a bar is wanted: `digest` starts faster without it.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = None

    def start(self, total: int) -> None:
        """Show the bar for ``total`` rows."""
        self._bar.start()
        self._task = self._bar.add_task("send", total=total, rate="")

    def advance(self, status: object) -> None:
        """Move the bar one row on and show the current rate."""
        task = self._bar.tasks[0]
        speed = task.speed
        self._bar.update(self._task, advance=1, rate=f"{speed:,.0f} msg/s" if speed else "")

    def finish(self, report: object) -> None:
        """Take the bar off the screen (it is transient); the summary line follows it."""
        self._bar.stop()


class LogProgress:
    """A log line every few seconds, for logs and pipes."""

    def __init__(self, every: float = 5.0) -> None:
        self._clock = time.monotonic
        self._every = every
        self._total = self._done = 0
        self._start = self._last = 0.0

    def start(self, total: int) -> None:
        """Start the clock for ``total`` rows."""
        self._total, self._start = total, self._clock()
        self._last = self._start

    def advance(self, status: object) -> None:
        """Count one row; print done, rate and ETA to stderr when ``every`` seconds passed."""
        self._done += 1
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            rate = self._done / max(now - self._start, 1e-9)
            eta = (self._total - self._done) / rate if rate else 0
            click.echo(
                f"send.progress done={self._done} total={self._total} "
                f"rate={rate:.1f}/s eta={eta:.0f}s",
                err=True,
            )

    def finish(self, report: object) -> None:
        """Nothing to close: the summary line says the rest."""
