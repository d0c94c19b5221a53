"""How one send run behaves: the options ``deliver`` fills from the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from digest.models import Edition
from digest.store import Store

__all__ = ["SendOptions"]


@dataclass(frozen=True)
class SendOptions:
    """How one send run behaves; defaults come from the settings (see ``deliver``)."""

    worker: bool = False  # share the edition with other workers through claims (PostgreSQL)
    retry_unknown: bool = False  # resend rows whose outcome is unknown after a crash
    retry_failed: bool = False  # queue failed rows again whose cause may be fixed (not 5.1.x)
    accept_unknown: bool = False  # count rows whose outcome is unknown as sent
    retry_delay: float = 30.0  # first wait before a deferred (4xx) row is retried
    retry_max_delay: float = 900.0  # the backoff doubles up to this
    pause_after: int = 3  # connection failures in a row that pause the run
    failure_pause: float = 0.5  # wait after a connection failure, times the failures so far
    # Rows claimed at a time. Between batches every connection idles (the next claim, its
    # readers' scores and follow-ups): 1,000 makes that five times rarer than 200 did.
    batch_size: int = 1000
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    # Which subscribers get a row: queues theirs and returns how many (None: every active
    # subscriber of the edition's frequency). The subscribers' own hours pass the due ones.
    audience: Callable[[Store, Edition], int] | None = None
