"""RFC 5322 bytes for digest's emails, built by hand so the per-recipient part is a splice.

``email.message.EmailMessage`` folds long List-Unsubscribe URLs into broken encoded-words and
quoted-printable-encodes every long HTML line, which costs more than rendering. Here a message
is encoded ONCE (text part quoted-printable, HTML part pure ASCII sent 7bit with numeric
character references and lines wrapped under 998 bytes); per recipient only the headers and
the few lines holding placeholder links are produced.
"""

from __future__ import annotations

import binascii
import email.utils
import itertools
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.header import Header

from digest.errors import DigestError

__all__ = [
    "CRLF",
    "MAX_LINE",
    "Slots",
    "SplicedMessage",
    "check_header",
    "domain_of",
    "encode_header_text",
    "encode_html",
    "encode_text",
    "format_address",
    "make_message_id",
    "seven_bit_html",
]

CRLF = "\r\n"
MAX_LINE = 998  # RFC 5322 hard limit, without the CRLF
WRAP_AT = 760  # leaves room for placeholder links that grow when spliced in
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def check_header(label: str, value: str) -> str:
    """Return ``value`` unless it holds a line break (header injection); then raise DigestError."""
    if "\r" in value or "\n" in value:
        raise DigestError(f"{label} contains a line break; refusing to put it in a mail header")
    return value


def encode_header_text(label: str, value: str) -> str:
    """An unstructured header value (Subject): RFC 2047 encoded when not ASCII, folded at 78."""
    check_header(label, value)
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=label).encode(linesep=CRLF)


# Characters that make a display name a quoted string (RFC 5322 specials, as email.utils).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def format_address(label: str, value: str) -> str:
    """``Name <addr>`` or ``addr`` as a header value; non-ASCII names become RFC 2047 words."""
    check_header(label, value)
    if _PLAIN_ADDRESS.fullmatch(value):  # the common case, per recipient: skip the parser
        return value
    name, addr = email.utils.parseaddr(value)
    if not addr or "@" not in addr or any(c in addr for c in ' <>,;"'):
        raise DigestError(f"{label}: not an email address: {value[:80]!r}")
    local, _, domain = addr.rpartition("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise DigestError(f"{label}: bad domain in {value[:80]!r}") from None
    addr = f"{local}@{domain}"  # a non-ASCII local part stays UTF-8 (RFC 6532, SMTPUTF8)
    if not name:
        return addr
    if name.isascii():  # quoted as formataddr would, which refuses a UTF-8 local part
        if _SPECIALS.search(name):
            name = f'"{email.utils.quote(name)}"'
        return f"{name} <{addr}>"
    return f"{Header(name, 'utf-8').encode(linesep=CRLF)} <{addr}>"


def domain_of(address: str) -> str:
    """The domain of an address like ``Name <a@b.org>`` (``localhost`` when there is none)."""
    addr = email.utils.parseaddr(address)[1]
    return addr.rpartition("@")[2] or "localhost"


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID at ``domain``."""
    return f"<{secrets.token_hex(12)}.{int(time.time())}@{domain}>"


class _MessageIds:
    """Message-IDs of one SplicedMessage: 64 random bits drawn once, then a counter.

    Unique as ``make_message_id``'s (the random part differs per envelope, the counter per
    message) without reading the kernel's random source per message (~80 us under load).
    """

    def __init__(self, domain: str) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count()
        self._domain = domain

    def next(self) -> str:
        """A fresh Message-ID, same shape as make_message_id's."""
        unique = f"{self._prefix}{next(self._count) & 0xFFFFFFFF:08x}"
        return f"<{unique}.{int(time.time())}@{self._domain}>"


class _Dates:
    """The Date header, formatted once per second (formatdate costs ~10 us per call)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        """``email.utils.formatdate(usegmt=True)`` of now."""
        second = int(time.time())
        if second != self._second:
            self._value = email.utils.formatdate(second, usegmt=True)
            self._second = second
        return self._value


@dataclass(frozen=True, slots=True)
class Slots:
    """The placeholders of one render, where each subscriber's signed links are spliced in.

    A fixed placeholder string let any paper field that spelled it (a project page, a title)
    receive every subscriber's tokens. Each render draws its own 128-bit nonce instead, after
    the content is fixed, so the only places holding the placeholders are the template's.
    """

    unsubscribe: str
    preferences: str
    nonce: str = ""

    @classmethod
    def new(cls) -> Slots:
        """Fresh placeholders for one render."""
        nonce = secrets.token_hex(16)
        return cls(f"DIGEST-SLOT-UNSUBSCRIBE-{nonce}", f"DIGEST-SLOT-PREFERENCES-{nonce}", nonce)

    def feedback(self, n: int | None = None) -> str:
        """The placeholder of the ``n``-th paper's feedback token; of any paper when None.

        Fixed width, so a line is wrapped the same wherever a paper sits in an email.
        """
        return f"DIGEST-SLOT-FEEDBACK-{self.nonce}-{'PAPR' if n is None else f'{n:04d}'}-"

    def values(self, unsubscribe: str, preferences: str) -> dict[str, str]:
        """The splice map: each placeholder to its subscriber's URL."""
        return {self.unsubscribe: unsubscribe, self.preferences: preferences}


def _wrap_line(line: str, limit: int) -> list[str]:
    """Split one over-long HTML line at spaces (whitespace is insignificant there)."""
    out = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit)
        if cut < 0:
            cut = line.rfind(">", limit // 2, limit) + 1  # between tags: still harmless
        if cut <= 0:
            cut = limit  # no space for hundreds of bytes: only hostile text gets here
        out.append(line[:cut])
        line = line[cut:]
    out.append(line)
    return out


def seven_bit_html(html: str, limit: int = WRAP_AT) -> str:
    """``html`` as pure ASCII (numeric character references) with lines under ``limit``.

    Such a part is sent ``7bit``: no quoted-printable cost and byte-exact splicing.
    """
    text = html.replace("\r\n", "\n").replace("\r", "\n")
    text = text.encode("ascii", "xmlcharrefreplace").decode("ascii")
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(_wrap_line(line, limit) if len(line) > limit else (line,))
    return "\n".join(lines)


def encode_text(text: str) -> bytes:
    """Lines of the text part (CRLF-ended) quoted-printable; line by line, so pieces concatenate."""
    return binascii.b2a_qp(text.encode("utf-8"))


def encode_html(text: str) -> bytes:
    """Lines of the 7-bit HTML part (CRLF-ended), any still past 998 bytes wrapped."""
    if len(text) > MAX_LINE and any(len(line) > MAX_LINE for line in text.split(CRLF)):
        text = CRLF.join(part for line in text.split(CRLF) for part in _wrap_line(line, WRAP_AT))
    return text.encode("ascii")


class _Part:
    """One body part, encoded once except for the lines that hold placeholders."""

    def __init__(self, text: str, keys: Sequence[str], encode: Callable[[str], bytes]) -> None:
        self._encode = encode
        self._keys = tuple(keys)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
        self.chunks: list[bytes | str] = []
        static: list[str] = []
        for line in lines:
            if any(k in line for k in self._keys):
                if static:
                    self.chunks.append(encode(CRLF.join(static) + CRLF))
                    static = []
                self.chunks.append(line + CRLF)
            else:
                static.append(line)
        if static:
            self.chunks.append(encode(CRLF.join(static) + CRLF))
        self.pieces = (
            re.split("(" + "|".join(map(re.escape, self._keys)) + ")", text) if keys else [text]
        )

    def encoded(self, values: Mapping[str, str]) -> bytes:
        """The encoded part with ``values`` spliced in for the placeholders."""
        out = []
        for chunk in self.chunks:
            if chunk.__class__ is bytes:
                out.append(chunk)
            else:
                for key in self._keys:
                    chunk = chunk.replace(key, values[key])
                out.append(self._encode(chunk))
        return b"".join(out)

    def decoded(self, values: Mapping[str, str]) -> str:
        """The part's text with ``values`` spliced in (for Message.text / Message.html)."""
        return "".join(values.get(p, p) if i % 2 else p for i, p in enumerate(self.pieces))


class SplicedMessage:
    """A multipart/alternative email (text, then HTML) encoded once, finished per recipient.

    Placeholders (ASCII strings without spaces) in ``text`` and ``html`` are replaced by the
    ``values`` given to :meth:`build`, which must be ASCII (URLs).
    """

    def __init__(
        self,
        *,
        sender: str,
        subject: str,
        text: str,
        html: str,
        placeholders: Sequence[str] = (),
        reply_to: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.sender = sender
        self.subject = subject
        self.domain = domain_of(sender)
        self._ids, self._dates = _MessageIds(self.domain), _Dates()
        html = seven_bit_html(html)
        self._text = _Part(text, placeholders, encode_text)
        self._html = _Part(html, placeholders, encode_html)
        self._boundary = "=_digest_" + secrets.token_hex(12)
        top = [("From", format_address("From", sender))]
        self._top = f"From: {top[0][1]}{CRLF}".encode()
        after = [f"Subject: {encode_header_text('Subject', subject)}"]
        if reply_to:
            after.append(f"Reply-To: {format_address('Reply-To', reply_to)}")
        for name, value in (headers or {}).items():
            after.append(f"{name}: {check_header(name, value)}")
        self._fixed = dict(headers or {})
        self._after = (CRLF.join(after) + CRLF).encode("utf-8")
        self._mime = (
            f"MIME-Version: 1.0{CRLF}"
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"{CRLF}{CRLF}'
            f"--{self._boundary}{CRLF}"
            f'Content-Type: text/plain; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        ).encode()
        # The CRLF before a boundary belongs to the boundary, so each part gets one more.
        self._middle = (
            f"{CRLF}--{self._boundary}{CRLF}"
            f'Content-Type: text/html; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: 7bit{CRLF}{CRLF}"
        ).encode()
        self._end = f"{CRLF}--{self._boundary}--{CRLF}".encode()

    def build(
        self,
        recipient: str,
        values: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[bytes, str, str, dict[str, str]]:
        """Finish for one recipient: ``(raw bytes, text, html, headers)``.

        ``headers`` are per-recipient headers (e.g. List-Unsubscribe); they are checked for
        line breaks and never folded.
        """
        values = values or {}
        raw, all_headers = self.wrap(
            recipient, self._text.encoded(values), self._html.encoded(values), headers
        )
        return raw, self._text.decoded(values), self._html.decoded(values), all_headers

    def wrap(
        self, recipient: str, text: bytes, html: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The message bytes around encoded ``text`` and ``html`` parts, and its headers."""
        to = format_address("To", recipient)
        message_id = self._ids.next()
        date = self._dates.now()
        extra = [f"To: {to}", f"Date: {date}", f"Message-ID: {message_id}"]
        all_headers = {"Message-ID": message_id, "Date": date, **self._fixed}
        for name, value in (headers or {}).items():
            line = f"{name}: {check_header(name, value)}"
            if len(line) > MAX_LINE:
                raise DigestError(f"{name} header is longer than {MAX_LINE} bytes")
            extra.append(line)
            all_headers[name] = value
        raw = b"".join(
            (
                self._top,
                (CRLF.join(extra) + CRLF).encode("utf-8"),
                self._after,
                self._mime,
                text,
                self._middle,
                html,
                self._end,
            )
        )
        return raw, all_headers
