"""Signed, purpose-bound tokens for the links in emails (confirm, unsubscribe, preferences).

A token is the subscriber id (and, for confirmation, a nonce that makes it single-use; ``.``
between them) followed by ``.`` and an HMAC-SHA256 signature, base64url without padding:
``4217.<43 characters>``. Confirm tokens also carry the time they were made (itsdangerous'
TimestampSigner: ``4217.3.<time>.<signature>``), so they expire after 48 hours; unsubscribe
and preferences tokens never expire (they sit in every email, and bulk-sender rules want
unsubscribe links in old emails to keep working).

The signing key is SHA-256(salt + "signer" + DIGEST_SECRET_KEY), derived once per purpose
(itsdangerous' "django-concat" derivation), the salt being ``digest.<purpose>``: a token made
for one purpose never verifies for another, and the signature covers the id, so a token for
one subscriber cannot touch another. Signatures are compared in constant time by itsdangerous.

Transition from HMAC-SHA1: before November 2026, tokens were itsdangerous' serializer defaults
(HMAC-SHA1 over base64 JSON), verified with the same purpose, subscriber and expiry checks.
Old unsubscribe links are honoured for good: they never expire by design (a one-click
unsubscribe must work from every email ever sent), and HMAC-SHA1 is still a sound MAC. Old
preferences links, which can do more, are honoured until LEGACY_SHA1_UNTIL (2027-12-01, a year
after the change); after that an old one is "not valid" and the reader uses the link of any
newer email. Old confirm links expired 48 hours after they were sent anyway.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous import Signer as ItsdangerousSigner

from digest.config import ConfigError
from digest.errors import DigestError

__all__ = [
    "DEMO_SECRET_KEY",
    "FeedbackData",
    "LEGACY_SHA1_UNTIL",
    "LINK_KEY_META",
    "MAX_AGE",
    "MIN_SECRET_LENGTH",
    "Purpose",
    "Signer",
    "TokenData",
    "TokenError",
    "TokenExpired",
    "generate_secret",
    "key_fingerprint",
    "require_secret",
]

MIN_SECRET_LENGTH = 32
# The meta row under which `digest demo` keeps the secret key it generated.
DEMO_SECRET_KEY = "demo_secret_key"  # noqa: S105 - the name of a meta row, not a secret
# The meta row where the store keeps key_fingerprint() of the key that signed the links of the
# newest emails sent: `digest check` compares it with the key configured now.
LINK_KEY_META = "link_key_fingerprint"
# Old HMAC-SHA1 preferences tokens verify until this moment (see the module docstring).
LEGACY_SHA1_UNTIL = datetime(2027, 12, 1, tzinfo=UTC)


class Purpose(enum.StrEnum):
    """What a token is allowed to do."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    FEEDBACK = "feedback"


# How long a token of each purpose stays valid (None: forever). Unsubscribe links must keep
# working in old emails (bulk-sender rules); preferences links too, as they sit in every email.
MAX_AGE: dict[Purpose, int | None] = {
    Purpose.CONFIRM: 48 * 3600,
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    Purpose.FEEDBACK: None,
}

# A subscriber id, then an optional nonce; ids are database keys (at most 18 digits).
_PAYLOAD = re.compile(rb"(\d{1,18})(?:\.(\d{1,18}))?")
# A feedback token's payload: subscriber id, "~", the paper's arXiv id with "/" as "_" (old
# ids such as hep-th/9901001 carry a slash, which a URL path segment cannot).
_FEEDBACK = re.compile(rb"(\d{1,18})~([A-Za-z0-9.\-_]{1,64})")


class TokenError(DigestError):
    """The token is malformed, tampered with, or made for another purpose."""


class TokenExpired(TokenError):
    """The token was genuine but is older than its purpose allows."""


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a verified token says."""

    subscriber_id: int
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class FeedbackData:
    """What a verified feedback token says: this subscriber, about this paper."""

    subscriber_id: int
    arxiv_id: str


def generate_secret() -> str:
    """A fresh random secret key suitable for DIGEST_SECRET_KEY."""
    return secrets.token_urlsafe(48)


def key_fingerprint(secret_key: str) -> str:
    """A short one-way name for a secret key: tells two keys apart and reveals neither."""
    mac = hmac.new(secret_key.encode(), b"digest: which key signs the links", hashlib.sha256)
    return mac.hexdigest()[:16]


def require_secret(secret_key: str) -> str:
    """``secret_key`` when it is long enough to sign links; ConfigError naming the setting.

    The one place the rule lives: the CLI, the web app and the Signer all ask here.
    """
    if len(secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"DIGEST_SECRET_KEY: must have at least {MIN_SECRET_LENGTH} characters")
    return secret_key


class _KeyDerivedOnce:
    """itsdangerous derives the key (a SHA-256 of salt and secret) on every call; with one
    secret per signer, once is enough: two signings per email were most of its build time."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._key: bytes = super().derive_key()  # type: ignore[misc]

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._key


class _PlainSigner(_KeyDerivedOnce, ItsdangerousSigner):
    pass


class _TimedSigner(_KeyDerivedOnce, TimestampSigner):
    pass


def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states fed HMAC's inner and outer padded key (RFC 2104), to be copied per MAC."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in key)),
        hashlib.sha256(bytes(b ^ 0x5C for b in key)),
    )


_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 to base64url


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Signer:
    """Makes and checks tokens with one secret key.

    ``clock`` (aware UTC) decides only whether old SHA-1 tokens are still honoured.
    """

    def __init__(self, secret_key: str, *, clock: Callable[[], datetime] = _utcnow) -> None:
        require_secret(secret_key)
        self._clock = clock
        self._signers = {
            p: (_TimedSigner if MAX_AGE[p] else _PlainSigner)(
                secret_key, salt=f"digest.{p}", digest_method=hashlib.sha256
            )
            for p in Purpose
        }
        # An email carries one feedback token per paper and an unsubscribe and a preferences
        # token. HMAC-SHA256 from hash states keyed once and copied per token costs ~1.5 us
        # instead of itsdangerous' ~6.5 us; the bytes are the same (tests/test_tokens.py).
        self._pads = {
            p: _hmac_pads(signer.derive_key())
            for p, signer in self._signers.items()
            if not MAX_AGE[p]  # timed (confirm) tokens carry a timestamp: itsdangerous signs
        }
        sep = self._signers[Purpose.FEEDBACK].sep
        self._sep = sep.encode("ascii") if isinstance(sep, str) else sep
        self._legacy = {
            p: (URLSafeTimedSerializer if MAX_AGE[p] else URLSafeSerializer)(
                secret_key, salt=f"digest.{p}"
            )
            for p in Purpose
        }

    def make(self, purpose: Purpose, subscriber_id: int, nonce: int = 0) -> str:
        """A URL-safe token letting its bearer do ``purpose`` for this subscriber."""
        payload = f"{subscriber_id}.{nonce}" if nonce else str(subscriber_id)
        if purpose in self._pads:
            return self._signed(purpose, payload.encode("ascii"))
        return self._signers[purpose].sign(payload).decode("ascii")

    def _signed(self, purpose: Purpose, payload: bytes) -> str:
        """``payload``, the separator and its HMAC-SHA256, as itsdangerous' Signer.sign."""
        inner, outer = self._pads[purpose]
        inner, outer = inner.copy(), outer.copy()
        inner.update(payload)
        outer.update(inner.digest())
        # base64.urlsafe_b64encode, without its two Python calls per token (13 per email).
        signature = binascii.b2a_base64(outer.digest(), newline=False).translate(_URLSAFE)
        return (payload + self._sep + signature.rstrip(b"=")).decode("ascii")

    def make_feedback(self, subscriber_id: int, arxiv_id: str) -> str:
        """A token for one subscriber's "more/less like this" on one paper (never expires).

        Bound to both: it cannot rate another paper or speak for another subscriber. The
        choice itself is not signed; the bearer may make either choice, and undo it.
        """
        payload = f"{subscriber_id}~{arxiv_id.replace('/', '_')}".encode()
        return self._signed(Purpose.FEEDBACK, payload)

    def verify_feedback(self, token: str) -> FeedbackData:
        """Check a feedback token; TokenError when it is malformed, forged or for another use."""
        invalid = TokenError("this feedback link is not valid")
        try:
            value = self._signers[Purpose.FEEDBACK].unsign(token)
        except BadSignature:
            raise invalid from None
        match = _FEEDBACK.fullmatch(value)
        if match is None:
            raise invalid
        return FeedbackData(int(match[1]), match[2].decode("ascii").replace("_", "/"))

    def verify(self, token: str, purpose: Purpose, *, max_age: int | None = None) -> TokenData:
        """Check ``token`` for ``purpose``; raise TokenExpired or TokenError when it fails."""
        age = max_age if max_age is not None else MAX_AGE[purpose]
        timing = {"max_age": age} if MAX_AGE[purpose] else {}  # only timed tokens take an age
        try:
            value = self._signers[purpose].unsign(token, **timing)
        except SignatureExpired:
            raise TokenExpired(f"this {purpose} link has expired") from None
        except BadSignature:
            return self._verify_legacy(token, purpose, timing)
        match = _PAYLOAD.fullmatch(value)
        if match is None:
            raise TokenError(f"this {purpose} link is not valid")
        return TokenData(int(match[1]), int(match[2] or 0))

    def _verify_legacy(self, token: str, purpose: Purpose, timing: dict[str, int]) -> TokenData:
        """An HMAC-SHA1 token of before the change: unsubscribe always, others until the date."""
        invalid = TokenError(f"this {purpose} link is not valid")
        if purpose is not Purpose.UNSUBSCRIBE and self._clock() >= LEGACY_SHA1_UNTIL:
            raise invalid
        try:
            payload = self._legacy[purpose].loads(token, **timing)
        except SignatureExpired:
            raise TokenExpired(f"this {purpose} link has expired") from None
        except BadSignature:
            raise invalid from None
        if (
            not isinstance(payload, list)
            or not 1 <= len(payload) <= 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        ):
            raise invalid
        return TokenData(*payload)
