"""The one exception type for mistakes a user can cause and fix."""


class DigestError(Exception):
    """A user-facing failure: the CLI prints its message as one line and exits non-zero."""
