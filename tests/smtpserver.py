"""A real aiosmtpd server on 127.0.0.1 for tests, scripted to fail the way a test needs.

``ScriptedServer`` runs in a thread of the test process; every accepted message is kept in
``messages``. A recipient can be given a script: a reply code for RCPT or for the end of DATA,
a disconnect after the message data (before the final reply), or silence after it.
Run as a program (``python tests/smtpserver.py PORT [DELAY]``) it is a counting sink in its
own process that prints ``ready`` and appends one line per accepted recipient to stdout.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    """One accepted message: envelope and bytes as the server got them."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Script:
    """How the server answers, per recipient address (``*`` for everyone)."""

    # addr -> "550 5.1.1 No such user", or a list of replies used up one per attempt
    rcpt: dict[str, str | list[str]] = field(default_factory=dict)
    # addr -> a reply | "disconnect" (after the data, before the reply) | "hang" | a list
    data: dict[str, str | list[str]] = field(default_factory=dict)
    delay: float = 0.0  # seconds before each final DATA reply
    # addr -> seconds before that message's final DATA reply (on top of ``delay``)
    slow: dict[str, float] = field(default_factory=dict)
    # Called with the recipients of each message as its data arrives, before the reply.
    watch: Callable[[list[str]], None] | None = None


class Handler:
    """aiosmtpd handler that follows a Script and records what it accepted."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.messages: list[Received] = []
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.auth_attempts = 0

    def _lookup(self, table: dict, addr: str) -> str | None:
        value = table.get(addr.lower(), table.get("*"))
        if isinstance(value, list):
            return value.pop(0) if value else None
        return value

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._lookup(self.script.rcpt, address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.script.watch is not None:
            self.script.watch(list(envelope.rcpt_tos))
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        if envelope.rcpt_tos and envelope.rcpt_tos[0].lower() in self.script.slow:
            await asyncio.sleep(self.script.slow[envelope.rcpt_tos[0].lower()])
        action = self._lookup(self.script.data, envelope.rcpt_tos[0]) if envelope.rcpt_tos else None
        if action == "disconnect":
            server.transport.abort()  # the data arrived; the final reply never will
            return "250 OK"
        if action == "hang":
            await asyncio.sleep(3600)
        if action:
            return action
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            for rcpt in envelope.rcpt_tos:
                self.counts[rcpt.lower()] += 1
        return "250 Message accepted"


class ScriptedServer:
    """Start with ``with ScriptedServer(...) as server:``; ``server.port`` is where it listens."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        **smtp_options: object,
    ) -> None:
        self.handler = Handler(script)
        self.port = free_port()
        kwargs: dict = dict(smtp_options)
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs["tls_context"] = tls_context
        if auth is not None:
            user, password = auth

            def authenticator(server, session, envelope, mechanism, data):
                self.handler.auth_attempts += 1
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode(),
                    data.password.decode(),
                ) == (user, password)
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )

    @property
    def messages(self) -> list[Received]:
        """Every message the server accepted."""
        return self.handler.messages

    def __enter__(self) -> ScriptedServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word (for connect timeouts)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def _serve_forever(port: int, delay: float) -> None:
    """A counting sink in this process: prints each accepted recipient on its own line."""

    class Printer(Handler):
        async def handle_DATA(self, server, session, envelope):
            if delay:
                await asyncio.sleep(delay)
            for rcpt in envelope.rcpt_tos:
                sys.stdout.write(rcpt.lower() + "\n")
            sys.stdout.flush()
            return "250 Message accepted"

    controller = Controller(Printer(), hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    _serve_forever(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
