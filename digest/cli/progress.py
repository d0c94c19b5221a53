"""Progress of `digest send` for people: a rich bar on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import time

import click

from digest.delivery.report import DeliveryReport
from digest.models import DeliveryStatus

__all__ = ["BarProgress", "LogProgress"]


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

    def advance(self, status: DeliveryStatus) -> None:
        """Move the bar one row on and show the current rate."""
        task = self._bar.tasks[0]
        speed = task.speed
        self._bar.update(self._task, advance=1, rate=f"{speed:,.0f} msg/s" if speed else "")

    def finish(self, report: DeliveryReport) -> None:
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

    def advance(self, status: DeliveryStatus) -> None:
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

    def finish(self, report: DeliveryReport) -> None:
        """Nothing to close: the summary line says the rest."""
