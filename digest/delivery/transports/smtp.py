"""SMTP: a pool of persistent aiosmtplib connections (the only module that speaks SMTP).

Replies that are not success become the TransportError kinds of digest.delivery.transports.base.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

import aiosmtplib

from digest.delivery.transports.base import (
    ConnectionFailure,
    Mark,
    PermanentFailure,
    TemporaryFailure,
    UnknownOutcome,
    Withdrawn,
    await_mark,
    refuse_when_stopping,
)
from digest.delivery.transports.commands import Clock, command
from digest.delivery.transports.replies import classify_reply
from digest.errors import DigestError
from digest.models import Message

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = ["SmtpTransport"]


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system trust store plus an optional extra CA bundle; hostname checks on."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _security_of(client: aiosmtplib.SMTP, security: str) -> str:
    """How the connection is protected, in words (the TLS version, the certificate checked)."""
    tls = client.get_transport_info("ssl_object")
    if tls is None:
        return "no encryption (DIGEST_SMTP_SECURITY=none)"
    kind = "STARTTLS" if security == "starttls" else "implicit TLS"
    return f"{kind} {tls.version()}, certificate verified"


# An address as subscribe validated it (ASCII, no space, quote or angle bracket): it goes on
# the MAIL/RCPT line as it is, with no parse per message.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
# What must never reach a MAIL/RCPT line (aiosmtplib refuses the same): it could add parameters.
_UNSAFE = re.compile(r'[\s<>"]')
_DOT_LINE = re.compile(rb"\n\.")  # a line that starts with a dot, which DATA must double
_QUOTED_LOCAL_PART = re.compile(r'^"(?:[^"\\\r\n]|\\.)*"')


def _address(value: str) -> str:
    """The addr-spec of ``value`` (``Name <a@b.org>`` or ``a@b.org``) for the envelope."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return value
    addr = parseaddr(value)[1] or value.strip()
    if _UNSAFE.search(_QUOTED_LOCAL_PART.sub("", addr, count=1)):
        raise PermanentFailure(f"not an address for the envelope: {addr[:80]!r}")
    return addr


class SmtpTransport:
    """A pool of persistent aiosmtplib connections, reconnecting when one drops.

    Each ``send`` takes a connection from the pool, so up to ``connections`` messages are in
    flight at once; the delivery loop runs that many senders.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str = "starttls",
        username: str = "",
        password: str = "",
        ca_file: Path | None = None,
        connections: int = 4,
        timeout: float = 30.0,
        message_timeout: float | None = None,
        envelope_from: str = "",
        local_hostname: str | None = "localhost",
        stopping: threading.Event | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self._username, self._password = username, password
        self._ca_file = ca_file
        self.concurrency = connections
        self.timeout = timeout
        # One message may take a few operations' worth of time, never forever.
        self.message_timeout = message_timeout or timeout * 4
        self._envelope_from = _address(envelope_from) if envelope_from else ""
        self._senders: dict[str, str] = {}  # a message's From -> its envelope address
        self.stopping = stopping or threading.Event()
        self.outbox: Path | None = None  # mail leaves this machine
        self._local_hostname = local_hostname
        self._pool: asyncio.Queue[aiosmtplib.SMTP] | None = None
        self._clients: list[aiosmtplib.SMTP] = []
        # The server refused our login once: the same password will not do better on the
        # other connections, so they fail at once instead of knocking again.
        self._login_refused: ConnectionFailure | None = None
        self._tls: ssl.SSLContext | None = None
        if security != "none":  # a bad CA file is a start-up error, not a failed message
            try:
                self._tls = _tls_context(ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise DigestError(f"DIGEST_SMTP_CA_FILE: cannot use {ca_file}: {exc}") from None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, stopping: threading.Event | None = None
    ) -> SmtpTransport:
        """The transport DIGEST_SMTP_* describe."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=str(settings.smtp_security),
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            connections=settings.smtp_connections,
            timeout=settings.smtp_timeout,
            envelope_from=settings.sender,
            stopping=stopping,
        )

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            # True: STARTTLS is required; a server that does not offer it is an error.
            start_tls=self.security == "starttls",
            tls_context=self._tls,
            local_hostname=self._local_hostname,
        )

    async def _take(self) -> aiosmtplib.SMTP:
        if self._pool is None:
            self._pool = asyncio.Queue()
            for _ in range(self.concurrency):
                client = self._client()
                self._clients.append(client)
                self._pool.put_nowait(client)
        return await self._pool.get()

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        """Connect, secure and log in, or raise ConnectionFailure."""
        if self._login_refused is not None:
            raise self._login_refused
        try:
            await client.connect()
            if self._username:
                await client.login(self._username, self._password)
            if client.is_ehlo_or_helo_needed:  # the transaction's commands go to the protocol
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            refused = classify_reply(exc.code, exc.message, stage="auth")
            if isinstance(refused, ConnectionFailure):
                self._login_refused = refused
            raise refused from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise ConnectionFailure(
                f"SMTP connect failed: {exc.code} {exc.message}"[:300]
            ) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            client.close()
            reason = str(exc) or type(exc).__name__
            if "STARTTLS" in reason.upper():
                reason = f"server does not offer STARTTLS (DIGEST_SMTP_SECURITY=starttls): {reason}"
            raise ConnectionFailure(
                f"cannot connect to {self.host}:{self.port}: {reason}"[:300]
            ) from None

    async def send(
        self,
        message: Message,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Send one message over a pooled connection; raise a TransportError on failure.

        ``written`` is resolved once the message's data is written and only the server's last
        reply is awaited; ``mark`` starts as the envelope goes out, and DATA waits for it (see
        Transport.send). Its commit then overlaps the MAIL and RCPT round trips instead of
        holding the connection idle after the last message's reply.
        """
        refuse_when_stopping(self)
        # Started now, it runs at the first wait: after MAIL FROM is written on a pooled
        # connection, during the connect on a new one.
        marking = asyncio.ensure_future(mark()) if mark is not None else None
        try:
            raw = message.raw
            # Dot-stuff (RFC 5321 4.5.2). The bytes are CRLF lines and never start with a dot,
            # so every line start is after a LF. On a 54 KB email the compiled pattern takes
            # 35 us where bytes.replace took 60-110 us (its two-byte search is slow on many LFs).
            raw = _DOT_LINE.sub(b"\n..", raw)
            payload = b"".join((raw, b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n"))
            sender = self._envelope_from
            if not sender:
                sender = self._senders.get(message.sender) or self._senders.setdefault(
                    message.sender, _address(message.sender)
                )
            recipient = _address(message.recipient)
            client = await self._take()
            try:
                await self._send_on(client, sender, recipient, payload, written, marking)
            finally:
                assert self._pool is not None
                self._pool.put_nowait(client)
        except Exception:
            if marking is not None:  # the caller must know whether the row moved
                await await_mark(marking)
            raise

    async def _send_on(
        self,
        client: aiosmtplib.SMTP,
        sender: str,
        recipient: str,
        payload: bytes,
        written: asyncio.Future[None] | None,
        marking: asyncio.Future[bool] | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.message_timeout
        state = {"data_sent": False, "marking": marking}
        try:
            async with asyncio.timeout(end) as deadline:
                state["clock"] = Clock(deadline, end, self.timeout, loop)
                await self._transaction(client, sender, recipient, payload, state, written)
        except TimeoutError:  # also aiosmtplib's read timeouts, which subclass it
            client.close()
            if state["data_sent"]:
                raise UnknownOutcome("no reply to the message within the timeout") from None
            raise TemporaryFailure("SMTP server too slow before DATA (timeout)") from None
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            client.close()
            if state["data_sent"]:
                raise UnknownOutcome(f"connection lost after DATA: {exc}"[:300]) from None
            raise ConnectionFailure(f"connection lost before DATA: {exc}"[:300]) from None

    async def _transaction(
        self,
        client: aiosmtplib.SMTP,
        sender: str,
        recipient: str,
        payload: bytes,
        state: dict,
        written: asyncio.Future[None] | None,
    ) -> None:
        if not client.is_connected:
            await self._connect(client)
        clock: Clock = state["clock"]
        # A non-ASCII address (RFC 6531) needs SMTPUTF8 on the MAIL command.
        utf8 = not (recipient.isascii() and sender.isascii())
        mail = b"MAIL FROM:<%s>%s\r\n" % (sender.encode(), b" SMTPUTF8" if utf8 else b"")
        try:
            reply = await command(client, mail, clock)
        except aiosmtplib.SMTPServerDisconnected:
            # An idle pooled connection the server closed: reconnect once, nothing was sent.
            client.close()
            await self._connect(client)
            reply = await command(client, mail, clock)
        if reply.code != 250:
            await self._reset(client, reply.code)
            raise classify_reply(reply.code, reply.message, stage="mail")
        reply = await command(client, b"RCPT TO:<%s>\r\n" % recipient.encode(), clock)
        if reply.code not in (250, 251):
            await self._reset(client, reply.code)
            raise classify_reply(reply.code, reply.message, stage="rcpt")
        if state["marking"] is not None and not await state["marking"]:
            await self._reset(client, 0)  # not to be sent: the envelope is dropped
            raise Withdrawn
        reply = await command(client, b"DATA\r\n", clock)
        if reply.code != 354:
            await self._reset(client, reply.code)
            raise classify_reply(reply.code, reply.message, stage="data")
        # From here on the server may have the message: a lost connection is UnknownOutcome.
        state["data_sent"] = True
        reply = await command(client, payload, clock, written)
        if reply.code != 250:
            raise classify_reply(reply.code, reply.message, stage="data")

    @staticmethod
    async def _reset(client: aiosmtplib.SMTP, code: int) -> None:
        """Abort the transaction so the connection can carry the next message."""
        if code == 421:
            client.close()
            return
        try:
            await client.rset()
        except aiosmtplib.SMTPException:
            client.close()

    async def check(self) -> str:
        """Connect, EHLO, secure and log in as a send would, then MAIL FROM and RSET.

        Nothing is sent. Returns what was verified, in words; raises ConnectionFailure naming
        the step that failed (a wrong CA, a wrong password, a refused sender ...).
        """
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout,
            use_tls=self.security == "tls", start_tls=False, tls_context=self._tls,
            local_hostname=self._local_hostname,
        )  # fmt: skip
        done = [f"{self.host}:{self.port}"]
        step = "connect"
        try:
            await client.connect()
            step = "EHLO"
            await client.ehlo()
            if self.security == "starttls":
                step = "STARTTLS"
                if not client.supports_extension("starttls"):
                    raise ConnectionFailure("STARTTLS: the server does not offer it")
                await client.starttls(tls_context=self._tls)
                await client.ehlo()
            done.append(_security_of(client, self.security))
            if self._username:
                step = "AUTH"
                await client.login(self._username, self._password)
                done.append("AUTH accepted")
            step = "MAIL FROM"
            await client.mail(self._envelope_from)
            await client.rset()
            done.append(f"sender <{self._envelope_from}> accepted")
            await client.quit()
        except aiosmtplib.SMTPResponseException as exc:
            raise ConnectionFailure(f"{step}: {exc.code} {exc.message}"[:300], exc.code) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailure(f"{step} to {self.host}:{self.port}: {reason}"[:300]) from None
        finally:
            client.close()
        return ", ".join(done) + "; nothing sent"

    async def aclose(self) -> None:
        """Say QUIT on every open connection."""
        for client in self._clients:
            if client.is_connected:
                try:
                    await client.quit(timeout=min(self.timeout, 5))
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        self._clients.clear()
        self._pool = None
