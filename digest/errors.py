"""The root of digest's one error tree: every mistake a user can cause and fix is a DigestError.

Each stage raises its own subclass (``ConfigError`` in digest.config, ``StoreError`` in
digest.store, ``TokenError`` in digest.tokens, ``TransportError`` in digest.delivery.transports),
so the CLI catches this one base and exits with the error's ``exit_code``.
"""

__all__ = ["DigestError"]


class DigestError(Exception):
    """A user-facing failure: the CLI prints its message as one line and exits non-zero."""

    exit_code = 1
