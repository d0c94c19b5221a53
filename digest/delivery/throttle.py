"""The send rate limit: messages per second, and a sliding 60-minute window per hour.

The hourly window is seeded from the ledger, so a run restarted within the hour does not send
a fresh hour's quota on top of what already went out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from digest.logs import event
from digest.store import utcnow

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.store import Store

__all__ = ["Throttle", "throttle_for"]

log = logging.getLogger(__name__)


class Throttle:
    """At most ``per_second`` messages a second and ``per_hour`` in any sliding 60 minutes."""

    def __init__(
        self,
        per_second: float = 0,
        per_hour: int = 0,
        *,
        history: Iterable[float] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._window: deque[float] = deque(history, maxlen=per_hour or None)
        self._lock = asyncio.Lock()

    @property
    def limited(self) -> bool:
        """Whether ``acquire`` may wait at all (a rate or an hourly limit is set)."""
        return bool(self.interval or self.per_hour)

    async def acquire(self) -> None:
        """Wait until one more message may go."""
        if not self.interval and not self.per_hour:
            return
        async with self._lock:
            now = self._clock()
            if self.per_hour and len(self._window) >= self.per_hour:
                wait = self._window[0] + 3600 - now
                if wait > 0:
                    event(log, "send.hourly_limit", wait_seconds=round(wait))
                # Until the hour has really passed: uvloop's timers may fire a millisecond early.
                while wait > 0:
                    await self._sleep(wait)
                    now = self._clock()
                    wait = self._window[0] + 3600 - now
            if self.interval:
                wait = self._next - now
                if wait > 0:
                    await self._sleep(wait)
                    now = self._clock()
                self._next = max(now, self._next) + self.interval
            if self.per_hour:
                self._window.append(now)


def throttle_for(settings: Settings, store: Store) -> Throttle:
    """The limiter ``DIGEST_SMTP_RATE`` / ``DIGEST_SMTP_HOURLY_LIMIT`` ask for.

    Its hourly window starts with the ledger's sends of the last hour (mapped onto the
    monotonic clock), so restarts and earlier runs count against the same hour.
    """
    since = utcnow() - timedelta(hours=1)
    history: list[float] = []
    if settings.smtp_hourly_limit:
        mono, wall = time.monotonic(), utcnow()
        history = [
            mono - (wall - t).total_seconds()
            for t in store.sent_times_since(since, settings.smtp_hourly_limit)
        ]
    return Throttle(settings.smtp_rate, settings.smtp_hourly_limit, history=history)
