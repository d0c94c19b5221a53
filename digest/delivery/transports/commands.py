"""One SMTP command on a pooled connection, and the time limits of a message's commands."""

from __future__ import annotations

import asyncio

import aiosmtplib

__all__ = ["Clock", "command"]


class Clock:
    """One message's time limits: each reply within ``timeout``, the whole within its end."""

    __slots__ = ("deadline", "end", "timeout", "loop", "due")

    def __init__(
        self, deadline: asyncio.Timeout, end: float, timeout: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.deadline, self.end, self.timeout, self.loop = deadline, end, timeout, loop
        self.due = -1.0  # when the deadline was last set to (the whole message's end before)

    def start(self) -> None:
        """A command goes out now: its reply is due within ``timeout`` (or up to 1% sooner).

        Each reschedule moves a timer in the loop's heap. A message's four commands follow
        each other within milliseconds, so only the first moves it: the later ones would move
        it by less than 1% of the timeout.
        """
        due = min(self.end, self.loop.time() + self.timeout)
        if due - self.due > self.timeout / 100:
            self.deadline.reschedule(due)
            self.due = due


async def command(
    client: aiosmtplib.SMTP,
    line: bytes,
    clock: Clock,
    written: asyncio.Future[None] | None = None,
) -> aiosmtplib.SMTPResponse:
    """Write one command line (or the message data) and await its reply; ``written`` is
    resolved in between.

    Straight on the connection's protocol: aiosmtplib's per-command path (address parsing,
    a lock and a wait_for per command) cost more per message than the plain client's whole
    transaction. A reply of 421 closes the connection, as aiosmtplib does.
    """
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("connection lost")
    clock.start()
    try:
        protocol.write(line)
        if written is not None and not written.done():
            written.set_result(None)
        reply = await protocol.read_response(timeout=None)  # the clock bounds it
    except aiosmtplib.SMTPServerDisconnected:
        client.close()
        raise
    if reply.code == 421:
        client.close()
    return reply
