"""Signed, purpose-bound tokens for the links in emails (confirm, unsubscribe, preferences).

A token carries a subscriber id (and, for confirmation, a nonce that makes it single-use),
signed with HMAC-SHA256 by itsdangerous. The purpose is the signing salt, so a token made for
one purpose never verifies for another, and the signature covers the id, so a token for one
subscriber cannot touch another. Signatures are compared in constant time by itsdangerous.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.config import ConfigError
from digest.errors import DigestError

__all__ = [
    "MIN_SECRET_LENGTH",
    "Purpose",
    "Signer",
    "TokenData",
    "TokenError",
    "TokenExpired",
    "generate_secret",
    "require_secret",
]

MIN_SECRET_LENGTH = 32


class Purpose(enum.StrEnum):
    """What a token is allowed to do."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


# How long a token of each purpose stays valid (None: forever). Unsubscribe links must keep
# working in old emails (bulk-sender rules); preferences links too, as they sit in every email.
MAX_AGE: dict[Purpose, int | None] = {
    Purpose.CONFIRM: 48 * 3600,
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
}


class TokenError(DigestError):
    """The token is malformed, tampered with, or made for another purpose."""


class TokenExpired(TokenError):
    """The token was genuine but is older than its purpose allows."""


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a verified token says."""

    subscriber_id: int
    nonce: int = 0


def generate_secret() -> str:
    """A fresh random secret key suitable for DIGEST_SECRET_KEY."""
    return secrets.token_urlsafe(48)


def require_secret(secret_key: str) -> str:
    """``secret_key`` when it is long enough to sign links; ConfigError naming the setting.

    The one place the rule lives: the CLI, the web app and the Signer all ask here.
    """
    if len(secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"DIGEST_SECRET_KEY: must have at least {MIN_SECRET_LENGTH} characters")
    return secret_key


class Signer:
    """Makes and checks tokens with one secret key."""

    def __init__(self, secret_key: str) -> None:
        require_secret(secret_key)
        self._timed = {
            p: URLSafeTimedSerializer(secret_key, salt=f"digest.{p}") for p in Purpose if MAX_AGE[p]
        }
        self._plain = {
            p: URLSafeSerializer(secret_key, salt=f"digest.{p}") for p in Purpose if not MAX_AGE[p]
        }

    def make(self, purpose: Purpose, subscriber_id: int, nonce: int = 0) -> str:
        """A URL-safe token letting its bearer do ``purpose`` for this subscriber."""
        payload = [subscriber_id, nonce] if nonce else [subscriber_id]
        serializer = self._timed.get(purpose) or self._plain[purpose]
        return serializer.dumps(payload)

    def verify(self, token: str, purpose: Purpose, *, max_age: int | None = None) -> TokenData:
        """Check ``token`` for ``purpose``; raise TokenExpired or TokenError when it fails."""
        try:
            if purpose in self._timed:
                age = max_age if max_age is not None else MAX_AGE[purpose]
                payload = self._timed[purpose].loads(token, max_age=age)
            else:
                payload = self._plain[purpose].loads(token)
        except SignatureExpired:
            raise TokenExpired(f"this {purpose} link has expired") from None
        except BadSignature:
            raise TokenError(f"this {purpose} link is not valid") from None
        if (
            not isinstance(payload, list)
            or not 1 <= len(payload) <= 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        ):
            raise TokenError(f"this {purpose} link is not valid")
        return TokenData(*payload)
