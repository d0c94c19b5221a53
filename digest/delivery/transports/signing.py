"""DKIM signing, applied once in front of whichever transport carries the message."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from digest.delivery.transports.base import ConnectionFailure, Mark, Transport
from digest.errors import DigestError
from digest.models import Message

if TYPE_CHECKING:  # dkimpy loads only when a key is configured
    from digest.mail.dkim import DkimSigner

__all__ = ["DkimSigned"]


class DkimSigned:
    """A transport whose messages are DKIM-signed before ``inner`` sends them."""

    def __init__(self, inner: Transport, signer: DkimSigner) -> None:
        self.inner = inner
        self.signer = signer

    @property
    def concurrency(self) -> int:
        """As the inner transport."""
        return self.inner.concurrency

    @property
    def timeout(self) -> float:
        """As the inner transport."""
        return self.inner.timeout

    @property
    def message_timeout(self) -> float:
        """As the inner transport."""
        return self.inner.message_timeout

    @property
    def stopping(self) -> threading.Event:
        """The inner transport's stop hook."""
        return self.inner.stopping

    @property
    def outbox(self) -> Path | None:
        """As the inner transport."""
        return self.inner.outbox

    async def send(
        self,
        message: Message,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Sign ``message`` and hand it to the inner transport (``mark`` with it)."""
        try:
            raw = self.signer.sign(message.raw)
        except DigestError as exc:  # our configuration, the same for every message: pause
            raise ConnectionFailure(str(exc)) from None
        await self.inner.send(dataclasses.replace(message, raw=raw), written, mark)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()
