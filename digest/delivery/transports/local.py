"""Transports that stay on this machine: a file outbox (the default) and memory (tests)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from digest.delivery.transports.base import (
    DEFAULT_TIMEOUT,
    EDITION_HEADER,
    ConnectionFailure,
    Mark,
    PermanentFailure,
    await_mark,
    refuse_when_stopping,
)
from digest.models import Message

__all__ = ["FileTransport", "MemoryTransport"]


class FileTransport:
    """Writes ``<outbox>/<edition-key>/<n>.eml`` with the HTML part beside it as ``<n>.html``.

    The edition key comes from the message's ``X-Digest-Edition`` header (set by the delivery
    loop), else the constructor's ``edition_key``. Files appear whole (write, then rename).
    """

    concurrency = 1

    def __init__(
        self,
        outbox: Path,
        *,
        edition_key: str = "messages",
        timeout: float = DEFAULT_TIMEOUT,
        stopping: threading.Event | None = None,
    ) -> None:
        self.outbox = Path(outbox)
        self.edition_key = edition_key
        # The same budget as SMTP's, so a `sending` row is called crashed equally late.
        self.timeout, self.message_timeout = timeout, timeout * 4
        self.stopping = stopping or threading.Event()
        self._next: dict[str, int] = {}

    def _number(self, folder: Path) -> int:
        key = str(folder)
        if key not in self._next:
            folder.mkdir(parents=True, exist_ok=True)
            taken = [int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit()]
            self._next[key] = max(taken, default=0) + 1
        n = self._next[key]
        self._next[key] = n + 1
        return n

    async def send(
        self,
        message: Message,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Write the message's bytes and HTML to the outbox, once ``mark`` took."""
        refuse_when_stopping(self)
        if mark is not None:
            await await_mark(mark())
        key = message.headers.get(EDITION_HEADER) or self.edition_key
        if "/" in key or "\\" in key or key.startswith("."):
            raise PermanentFailure(f"unusable edition key for a folder name: {key!r}")
        folder = self.outbox / key
        try:
            n = self._number(folder)
            _write_atomic(folder / f"{n}.html", message.html.encode("utf-8"))
            _write_atomic(folder / f"{n}.eml", message.raw)
        except OSError as exc:
            raise ConnectionFailure(f"cannot write to the outbox {folder}: {exc}") from None

    async def aclose(self) -> None:
        """Nothing to release."""


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class MemoryTransport:
    """Keeps every message in ``messages``; for tests and dry runs."""

    concurrency = 1

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, stopping: threading.Event | None = None
    ) -> None:
        self.timeout, self.message_timeout = timeout, timeout * 4
        self.stopping = stopping or threading.Event()
        self.outbox: Path | None = None  # tests stand in for real sending
        self.messages: list[Message] = []

    async def send(
        self,
        message: Message,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Remember the message, once ``mark`` took."""
        refuse_when_stopping(self)
        if mark is not None:
            await await_mark(mark())
        self.messages.append(message)

    async def aclose(self) -> None:
        """Nothing to release."""
