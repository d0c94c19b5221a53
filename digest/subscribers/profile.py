"""Checks of a reader's profile fields, shared by the CLI, import and the preferences page.

Each ``parse_*`` takes what a person typed (or a file held) and returns the stored value, or
raises ``ProfileError`` with one line that says what is wrong, so every entry point refuses
the same values in the same words.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from digest.errors import DigestError
from digest.models import normalize_arxiv_id

__all__ = [
    "EMPTY_DAYS",
    "MAX_FOLLOWS",
    "MAX_NAME_CHARS",
    "ProfileError",
    "check_follows",
    "parse_arxiv_id",
    "parse_blend",
    "parse_empty_days",
    "parse_hour",
    "parse_timezone",
]

EMPTY_DAYS = ("skip", "roll")  # skip a day with nothing new, or roll it into the next email
# Follows are matched against every paper of every edition; a name is a name, not an essay.
MAX_FOLLOWS = 50
MAX_NAME_CHARS = 100


# Hugging Face papers pages, alphaXiv, arXiv's other hosts and DOIs all name the arXiv id in
# their path; what follows the id (a version, ".pdf", a query) is dropped.
_URL_PREFIX = re.compile(
    r"^(?:https?://)?(?:www\.|export\.)?"
    r"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|alphaxiv\.org/(?:abs/)?"
    r"|(?:dx\.)?doi\.org/10\.48550/arxiv\.)",
    re.IGNORECASE,
)
_DOI = re.compile(r"^(?:doi:\s*)?10\.48550/arxiv\.", re.IGNORECASE)


class ProfileError(DigestError, ValueError):
    """A profile value a person typed is not valid; the CLI exits 2 (a usage error)."""

    exit_code = 2


def _shown(text: object) -> str:
    """The value as it was given, cut short: an error never echoes a huge input."""
    return repr(str(text)[:60])


def parse_blend(text: str | float | None) -> float | None:
    """ "Trending" 0 to "For me" 1; blank gives None (the default for the subscriber's likes)."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ProfileError(f"blend must be a number from 0 to 1, not {_shown(raw)}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ProfileError(f"blend must be a number from 0 to 1, not {_shown(raw)}")
    return value


def parse_hour(text: str | int | None) -> int | None:
    """The local hour to send at, 0 to 23; blank gives None (the hour of DIGEST_SCHEDULE)."""
    raw = str(text).strip() if text is not None else ""
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ProfileError(f"hour must be a whole number from 0 to 23, not {_shown(raw)}") from None
    if not 0 <= value <= 23:
        raise ProfileError(f"hour must be a whole number from 0 to 23, not {_shown(raw)}")
    return value


def parse_timezone(text: str | None) -> str | None:
    """An IANA time zone name ("Europe/Berlin"); blank gives None (DIGEST_TIMEZONE)."""
    raw = (text or "").strip()
    if not raw:
        return None
    problem = ProfileError(f"not a time zone: {_shown(raw)} (an IANA name such as Europe/Berlin)")
    if len(raw) > 64 or raw.startswith(("/", ".")) or ".." in raw:
        raise problem  # zoneinfo would read such a "key" as a path
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        # A case slip ("europe/berlin") is forgiven; anything else is refused by name.
        by_key = {name.casefold(): name for name in available_timezones()}
        if raw.casefold() in by_key:
            return by_key[raw.casefold()]
        raise problem from None
    return raw


def parse_empty_days(text: str | None) -> str:
    """``skip`` (default when blank) or ``roll``: what a day with nothing new does."""
    raw = (text or "").strip().lower() or EMPTY_DAYS[0]
    if raw not in EMPTY_DAYS:
        raise ProfileError(f"empty days must be skip or roll, not {_shown(text)}")
    return raw


def parse_arxiv_id(text_or_url: str) -> str:
    """The version-less arXiv id in an id, ``arXiv:`` id, DOI, or arXiv / Hugging Face URL.

    ``https://huggingface.co/papers/2411.01234``, ``arxiv.org/pdf/2411.01234v2``,
    ``10.48550/arXiv.2411.01234`` and ``hep-th/9901001`` all work.
    """
    raw = (text_or_url or "").strip().strip("<>\"'.,;()[]")
    text = _DOI.sub("", _URL_PREFIX.sub("", raw))
    text = re.split(r"[?#]", text, maxsplit=1)[0].removesuffix("/")
    try:
        return normalize_arxiv_id(text)
    except ValueError:
        raise ProfileError(f"not an arXiv id or URL: {_shown(raw)}") from None


def check_follows(names: list[str] | tuple[str, ...], what: str = "name") -> tuple[str, ...]:
    """Followed names stripped, blanks and repeats dropped; refused past the caps."""
    kept = tuple(dict.fromkeys(" ".join(n.split()) for n in names if n and n.strip()))
    for name in kept:
        if len(name) > MAX_NAME_CHARS:
            raise ProfileError(f"a followed {what} can be at most {MAX_NAME_CHARS} characters")
    if len(kept) > MAX_FOLLOWS:
        raise ProfileError(f"at most {MAX_FOLLOWS} followed {what}s (got {len(kept):,})")
    return kept
