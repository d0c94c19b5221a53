"""The reader's profile fields as people type them: one rule each, for the web, CLI and import.

Each ``parse_*`` takes the text a person gave (a form field, a CLI option, a CSV cell) and
returns the stored value, or raises ProfileError with a one-line message. Blank means "the
default" wherever a default exists (blend, hour, timezone: None; empty days: "skip").
"""

from __future__ import annotations

import re
import zoneinfo

from digest.errors import DigestError
from digest.models import normalize_arxiv_id

__all__ = [
    "EMPTY_DAYS",
    "ProfileError",
    "parse_arxiv_id",
    "parse_blend",
    "parse_empty_days",
    "parse_hour",
    "parse_timezone",
]

EMPTY_DAYS = ("skip", "roll")  # skip a day with nothing new, or roll it into the next email

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
    """A profile value a person typed that cannot be used; the message says why in one line."""


def _shown(text: str) -> str:
    """``text`` as quoted in an error: short, one line."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")


def parse_blend(text: str | float | None) -> float | None:
    """ "Trending" (0) to "For me" (1); blank: None (the default for the reader's likes)."""
    raw = "" if text is None else str(text).strip()
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
    """The local hour to send at, 0 to 23; blank: None (the hour of DIGEST_SCHEDULE)."""
    raw = "" if text is None else str(text).strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 <= int(raw) <= 23:
        raise ProfileError(f"hour must be a whole number from 0 to 23, not {_shown(raw)}")
    return int(raw)


def parse_timezone(text: str | None) -> str | None:
    """An IANA time zone name (``Europe/Berlin``); blank: None (DIGEST_TIMEZONE)."""
    raw = (text or "").strip()
    if not raw:
        return None
    problem = ProfileError(f"not a time zone: {_shown(raw)} (use a name like Europe/Berlin)")
    if len(raw) > 64 or raw.startswith(("/", ".")) or ".." in raw:
        raise problem  # zoneinfo would read such a "key" as a path
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise problem from None
    return raw


def parse_empty_days(text: str | None) -> str:
    """``skip`` days with nothing new (the default) or ``roll`` them into the next email."""
    raw = (text or "").strip().lower()
    if not raw:
        return "skip"
    if raw not in EMPTY_DAYS:
        raise ProfileError(f"empty days must be skip or roll, not {_shown(raw)}")
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
