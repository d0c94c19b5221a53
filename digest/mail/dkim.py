"""DKIM signing of outgoing messages with dkimpy, when a key is configured."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

import dkim
import dkim.crypto

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Settings

__all__ = ["SIGNED_HEADERS", "DkimRecord", "DkimSigner"]

# What receivers (Gmail, Yahoo) check: the identity headers and the one-click unsubscribe pair,
# so nobody can strip or swap the unsubscribe link without breaking the signature.
SIGNED_HEADERS = (
    b"From", b"To", b"Subject", b"Date", b"Message-ID",
    b"List-Unsubscribe", b"List-Unsubscribe-Post",
)  # fmt: skip


# The DER AlgorithmIdentifier of rsaEncryption (OID 1.2.840.113549.1.1.1, NULL parameters).
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # 0-led: positive


@dataclass(frozen=True)
class DkimRecord:
    """The DNS TXT record receivers look up to verify our signatures."""

    name: str  # <selector>._domainkey.<domain>
    value: str  # v=DKIM1; k=rsa; p=<the public key>
    bits: int  # the key's size


@dataclass(frozen=True)
class DkimSigner:
    """Signs RFC 5322 bytes with one private key, selector and domain."""

    private_key: bytes
    selector: str
    domain: str

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner:
        """The signer DIGEST_DKIM_* describe; a missing key file is a one-line error."""
        path = Path(settings.dkim_key_file)  # type: ignore[arg-type]
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise DigestError(f"DIGEST_DKIM_KEY_FILE: cannot read {path}: {exc.strerror}") from None
        domain = settings.dkim_domain or parseaddr(settings.sender)[1].rpartition("@")[2]
        if not domain:
            raise DigestError("DIGEST_DKIM_DOMAIN: set it, or give DIGEST_FROM an address")
        signer = cls(private_key=key, selector=settings.dkim_selector, domain=domain)
        try:  # fail at start-up, in one line, rather than on every message
            signer.sign(b"From: a@" + domain.encode() + b"\r\nSubject: t\r\n\r\nt\r\n")
        except DigestError as exc:
            raise DigestError(f"DIGEST_DKIM_KEY_FILE: {path} is not a usable key: {exc}") from None
        return signer

    def sign(self, raw: bytes) -> bytes:
        """The message with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
        try:
            header = dkim.sign(
                raw,
                self.selector.encode(),
                self.domain.encode(),
                self.private_key,
                include_headers=list(SIGNED_HEADERS),
                canonicalize=(b"relaxed", b"relaxed"),
            )
        except (dkim.DKIMException, ValueError) as exc:
            raise DigestError(f"DKIM signing failed: {exc}") from None
        return header + raw

    def record(self) -> DkimRecord:
        """The TXT record to publish for this key (its public half, as SubjectPublicKeyInfo)."""
        try:
            key = dkim.crypto.parse_pem_private_key(self.private_key)
        except (dkim.crypto.UnparsableKeyError, dkim.crypto.ASN1FormatError) as exc:
            raise DigestError(f"DIGEST_DKIM_KEY_FILE: not an RSA private key: {exc}") from None
        public = _der(0x30, _der_integer(key["modulus"]) + _der_integer(key["publicExponent"]))
        spki = _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\0" + public))
        return DkimRecord(
            name=f"{self.selector}._domainkey.{self.domain}",
            value="v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii"),
            bits=key["modulus"].bit_length(),
        )
