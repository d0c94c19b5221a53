"""What counts as an email address, a host name, and "this machine", for settings and headers.

Kept apart from digest.config so the rules have one home: settings validate with them at
start-up, and anything building a header can ask the same question.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["is_host_name", "is_local_host", "mailbox_address"]

# An address as relays and DMARC expect it: ASCII local part, a host name with dotted labels.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ADDR_SPEC = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_DOMAIN.pattern}")
# "addr@example.org", or "Display Name <addr@example.org>" (the name may be quoted)
_MAILBOX = re.compile(
    r'\s*(?:(?P<name>[^<>@]*?|"[^"]*")\s*<(?P<addr>[^<>\s]+)>|(?P<bare>[^<>\s]+))\s*'
)


def mailbox_address(value: str) -> str:
    """The addr-spec of ``value`` ("Name <a@example.org>" or "a@example.org"); ValueError if none.

    One address only, no CR/LF (it goes into a header), a domain of dotted labels.
    """
    match = _MAILBOX.fullmatch(value)
    addr = match and (match["addr"] or match["bare"])
    if not addr or "\r" in value or "\n" in value:
        raise ValueError('expected one address, like "Papers <papers@example.org>"')
    if not _ADDR_SPEC.fullmatch(addr):
        raise ValueError(f"{addr!r} is not an email address (local@domain, ASCII)")
    return addr


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


def is_host_name(value: str) -> bool:
    """True for a DNS name of dotted labels (``smtp.example.org``) or an IP address."""
    return bool(_DOMAIN.fullmatch(value)) or _ip(value) is not None


def is_local_host(host: str) -> bool:
    """True for names and addresses that mean "this machine", which nobody else can reach."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and (ip.is_loopback or ip.is_unspecified)
