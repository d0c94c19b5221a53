"""The seam every sender goes through: the Transport protocol and the errors it may raise.

Every failure is one of four ``TransportError`` kinds, so the delivery run can decide what a
reply means for the ledger without knowing SMTP: defer, fail (maybe suppress), pause, or
record that the outcome is unknown and never resend on its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from digest.errors import DigestError
from digest.models import Message

__all__ = [
    "EDITION_HEADER",
    "STOPPING",
    "ConnectionFailure",
    "Mark",
    "PermanentFailure",
    "TemporaryFailure",
    "Transport",
    "TransportError",
    "UnknownOutcome",
    "Withdrawn",
    "await_mark",
    "refuse_when_stopping",
]

EDITION_HEADER = "X-Digest-Edition"
# Why a stopping transport refuses a message; the send run pauses and the rest stays queued.
STOPPING = "digest serve is stopping (SIGTERM); the rest stays queued"
DEFAULT_TIMEOUT = 30.0  # seconds, as DIGEST_SMTP_TIMEOUT's default


class TransportError(DigestError):
    """A message could not be handed over; the subclass says what that means for the ledger."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(TransportError):
    """A 4xx reply (or a blip before DATA): defer and retry later."""


class PermanentFailure(TransportError):
    """A 5xx reply: the message failed. ``suppress`` is True for 5.1.x (the address is bad)."""

    def __init__(self, message: str, code: int | None = None, *, suppress: bool = False) -> None:
        super().__init__(message, code)
        self.suppress = suppress


class ConnectionFailure(TransportError):
    """Cannot connect, authenticate or secure the connection: the run should pause, not storm."""


class UnknownOutcome(TransportError):
    """The connection was lost after DATA was sent: the server may or may not have the message."""


class Withdrawn(Exception):  # noqa: N818 - not an error: the caller said no
    """The ``mark`` given to ``Transport.send`` said no: nothing was handed over."""

    def __init__(self) -> None:
        super().__init__("the row was not marked sending; nothing was sent")


# A row's ``sending`` mark, awaited before a message's data goes out: True when it took.
Mark = Callable[[], Awaitable[bool]]


@runtime_checkable
class Transport(Protocol):
    """Where messages go; the whole interface the delivery run, web pages and CLI rely on."""

    concurrency: int  # how many sends may overlap (the run starts that many senders)
    timeout: float  # seconds one operation (connect, one command) may take
    message_timeout: float  # seconds one whole send may take; never more
    # The stop hook: once set (from any thread) send refuses new messages with
    # ConnectionFailure(STOPPING) before anything leaves; messages in flight finish.
    stopping: threading.Event
    # The folder a transport that keeps mail on this machine writes to (the summary says
    # "written to" it, never "sent"); None when mail leaves the machine.
    outbox: Path | None

    async def send(
        self,
        message: Message,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Hand one message over, or raise a TransportError subclass.

        ``written``, when given, may be resolved once the message's bytes are on their way
        and only the server's reply is awaited; the send loop then builds its next message
        meanwhile. A transport that never resolves it is fine: the loop resolves it itself
        when ``send`` returns.

        ``mark``, when given, is the row's ``sending`` mark. The transport starts it as soon
        as it may (SMTP: with the envelope, so its commit overlaps the server's replies),
        sends no data before it returned True, and raises Withdrawn when it returned False.
        Once started, it is awaited before ``send`` returns or raises, so the caller knows
        whether the row moved. A TransportError raised before it started (a stopping
        transport, a signing error) leaves the row as it was.
        """

    async def aclose(self) -> None:
        """Release connections and files."""


async def await_mark(marking: Awaitable[bool]) -> None:
    """Wait for a started mark; raise Withdrawn when it did not take (its own error as is)."""
    if not await marking:
        raise Withdrawn


def refuse_when_stopping(transport: Transport) -> None:
    """Raise ConnectionFailure(STOPPING) once ``transport.stopping`` is set."""
    if transport.stopping.is_set():
        raise ConnectionFailure(STOPPING)
