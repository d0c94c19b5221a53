"""Turn raw records (HF daily-papers items, JSON Lines rows) into Papers, or say why not.

One normaliser per record shape, shared by every source that meets it: the `hf` source and the
`file` source both read Hugging Face daily-papers items through `paper_from_hf`.
A record is either wholly parsed or rejected with a reason (`BadRecord`); nothing half-parsed
leaves this module. What does leave it fits both databases: counts up to MAX_COUNT, dates within
the years 1900-2999, text that is valid UTF-8 (lone surrogates become U+FFFD).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from digest.models import Paper, normalize_arxiv_id

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_ABSTRACT_CHARS",
    "MAX_COUNT",
    "MAX_NUMBER_DIGITS",
    "MAX_SUMMARY_CHARS",
    "MAX_TITLE_CHARS",
    "BadRecord",
    "clean_abstract",
    "clean_title",
    "dedupe",
    "paper_from_hf",
    "paper_from_row",
    "parse_datetime",
]

# Caps keep one absurd record (a 1 MB "abstract") from bloating the database and every email.
# Real arXiv abstracts stay under 1,920 characters; titles under 300.
MAX_TITLE_CHARS = 500
MAX_ABSTRACT_CHARS = 5_000
MAX_SUMMARY_CHARS = 1_000
MAX_KEYWORDS = 30

# The largest count (upvotes, comments, GitHub stars) both databases hold: PostgreSQL's
# INTEGER is 32-bit (SQLite's is 64-bit). A record above it is skipped, not clamped: a count
# that large is corrupt, and clamped it would top the trending order of every email.
MAX_COUNT = 2**31 - 1
# The JSON readers turn a number of more digits into infinity, which counts reject.
MAX_NUMBER_DIGITS = 100
# Dates outside these years are skipped. The extremes of Python's calendar break at the store:
# 9999-12-31T23:59:59-05:00 overflows on conversion to UTC, and PostgreSQL cannot hand back
# 9999-12-31 UTC to a session east of UTC (year 10000) nor 0001-01-01 UTC to one west of it.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

# C0 and C1 control characters (NUL included). Newlines and tabs are whitespace and are folded
# by the whitespace rules below; format characters (RTL marks, ZWJ in emoji) are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone UTF-16 surrogates (JSON's \ud800 escapes) are not text: UTF-8 cannot encode them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class BadRecord(ValueError):
    """A record that cannot become a Paper; the message says which field and why."""


def _strip_controls(text: str) -> str:
    # NFC so the same title typed two ways compares equal when papers merge.
    if _CONTROL.search(text) is not None:
        text = _CONTROL.sub("", text)
    if text.isascii():  # nearly every abstract: no surrogate, already NFC
        return text
    return unicodedata.normalize("NFC", _SURROGATE.sub("\ufffd", text))


def _clean_line(text: str) -> bool:
    """True for text the cleaners give back as it is: ASCII on one line, single-spaced.

    Printable ASCII holds no control character and no whitespace but the space, so only runs
    of spaces and spaces at the ends are left to check; all in C, 10x faster than cleaning.
    """
    return (
        text.isascii()
        # Printable ASCII is 0x20-0x7e: deleting those bytes leaves nothing. 2x cheaper than
        # str.isprintable, which looks every character up in the Unicode database.
        and not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    )


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # end on a word when one is near
        cut = cut[:space]
    return cut.rstrip() + "…"


def clean_title(text: str) -> str:
    """A title on one line: controls removed, hard wraps and runs of spaces folded, capped."""
    if not _clean_line(text):
        text = " ".join(_strip_controls(text).split())
    return _cap(text, MAX_TITLE_CHARS)


def clean_abstract(text: str, limit: int = MAX_ABSTRACT_CHARS) -> str:
    """An abstract with hard line breaks unwrapped and paragraphs kept, capped at ``limit``.

    arXiv and HF wrap abstracts at ~80 columns; a blank line is a real paragraph break.
    """
    if _clean_line(text):  # an abstract someone unwrapped already (JSON Lines exports)
        return _cap(text, limit)
    text = _strip_controls(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # str.split() folds exactly the whitespace r"\s+" does, at a fraction of the cost.
    parts = _PARAGRAPH.split(text) if "\n" in text else (text,)
    return _cap("\n\n".join(p for p in (" ".join(p.split()) for p in parts) if p), limit)


# --- typed field readers: each raises BadRecord naming the field ---


def _present(record: Mapping, key: str) -> bool:
    return record.get(key) is not None  # null in real responses means "absent"


def _text(record: Mapping, key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{key}: expected text, got {type(value).__name__}")
    return value


def _count(record: Mapping, key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if value == math.inf:
        raise BadRecord(
            f"{key}: a number of over {MAX_NUMBER_DIGITS} digits is more than {MAX_COUNT}"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecord(f"{key}: expected a whole number >= 0, got {value!r:.40}")
    if value > MAX_COUNT:
        raise BadRecord(f"{key}: {value!r:.40} is more than {MAX_COUNT}")
    return value


def _strings(record: Mapping, key: str) -> tuple[str, ...]:
    value = record.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRecord(f"{key}: expected a list of text")
    return _clean_strings(tuple(value))


# A listing repeats a few category lists thousands of times: each is cleaned once.
@functools.lru_cache(maxsize=1024)
def _clean_strings(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for v in values if (t := clean_title(v))))


# A listing repeats a few days thousands of times: each text is parsed and checked once.
@functools.lru_cache(maxsize=1024)
def parse_datetime(value: str, key: str) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC datetime (None for blank text).

    Raises BadRecord naming ``key`` when the text is not a date or lies outside EARLIEST to
    LATEST. A bare date or naive time is taken as UTC: the store only accepts aware datetimes.
    """
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRecord(f"{key}: not an ISO 8601 date: {value!r:.40}") from None
    try:
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # the UTC time falls before year 1 or after year 9999
        parsed = None
    if parsed is None or not EARLIEST <= parsed <= LATEST:
        raise BadRecord(f"{key}: {value!r:.40} is outside the years {EARLIEST.year}-{LATEST.year}")
    return parsed


def _when(record: Mapping, key: str) -> datetime | None:
    value = _text(record, key)
    return parse_datetime(value, key) if value else None


def _url(record: Mapping, key: str) -> str | None:
    value = _text(record, key)
    if not value or not value.strip():
        return None
    value = value.strip()
    parts = urlsplit(value)
    # Only web links: a javascript: or data: URL must never reach an email.
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c in value for c in " <>\"'")
        or not value.isprintable()  # controls, lone surrogates, line separators
    ):
        raise BadRecord(f"{key}: not an http(s) URL: {value!r:.60}")
    return value


def _github(record: Mapping, key: str) -> str | None:
    value = _text(record, key)
    if not value or not value.strip():
        return None
    value = value.strip().removesuffix(".git").rstrip("/")
    if _OWNER_REPO.match(value):
        return f"https://github.com/{value}"
    return _url({key: value}, key)


def _arxiv_id(value: object, key: str = "id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{key}: missing arXiv id")
    try:
        arxiv_id = normalize_arxiv_id(value)
    except ValueError:
        arxiv_id = ""
    if not arxiv_id.isascii() or not arxiv_id:  # \d also matches other scripts' digits
        raise BadRecord(f"{key}: not an arXiv id: {value!r:.40}")
    return arxiv_id


def _authors(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRecord("authors: expected a list")
    names: list[str] = []
    for author in value:
        if isinstance(author, str):
            name = author
        elif isinstance(author, Mapping):
            if author.get("hidden") is True:  # hidden on HF: do not show it in emails either
                continue
            name = author.get("name")
            if not isinstance(name, str):
                raise BadRecord("authors: an author has no name")
        else:
            raise BadRecord("authors: expected names or objects with a name")
        if name := clean_title(name):
            names.append(name)
    return tuple(names)


def _title(*candidates: object) -> str:
    for value in candidates:
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRecord(f"title: expected text, got {type(value).__name__}")
        if title := clean_title(value):
            return title
    raise BadRecord("title: missing")


def _organization(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return clean_title(value) or None
    if isinstance(value, Mapping):
        for key in ("fullname", "name"):
            if text := _text(value, key):
                return clean_title(text) or None
        return None
    raise BadRecord("organization: expected text or an object with a name")


def paper_from_hf(item: object, source: str) -> Paper:
    """One Hugging Face daily-papers item as a Paper; raises BadRecord saying what is wrong.

    The item's top level describes the listing (clean ``title``, listing ``publishedAt`` or
    ``submittedOnDailyAt``); ``paper`` describes the arXiv paper (wrapped title, ``summary``,
    arXiv ``publishedAt``, authors, upvotes, and in newer responses ``ai_*``, ``github*``).
    """
    if not isinstance(item, Mapping):
        raise BadRecord(f"expected an object, got {type(item).__name__}")
    paper = item.get("paper")
    if not isinstance(paper, Mapping):
        raise BadRecord("paper: missing or not an object")

    def pick(key: str) -> Mapping:
        # Newer responses put some fields inside `paper`, older ones on the item.
        return paper if _present(paper, key) else item

    arxiv_id = _arxiv_id(paper.get("id"), "paper.id")
    title = _title(item.get("title"), paper.get("title"))
    summary = _text(paper, "summary") if _present(paper, "summary") else _text(item, "summary")
    listed = _when(pick("submittedOnDailyAt"), "submittedOnDailyAt") or _when(item, "publishedAt")
    ai_summary = _text(pick("ai_summary"), "ai_summary")
    upvotes = _count(paper, "upvotes")
    if upvotes is None:
        upvotes = _count(item, "upvotes")
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=clean_abstract(summary or ""),
        authors=_authors(paper.get("authors")),
        published_at=_when(paper, "publishedAt"),
        listed_at=listed,
        upvotes=upvotes or 0,
        comments=_count(item, "numComments") or _count(paper, "numComments") or 0,
        ai_summary=clean_abstract(ai_summary, MAX_SUMMARY_CHARS) if ai_summary else None,
        keywords=_strings(pick("ai_keywords"), "ai_keywords")[:MAX_KEYWORDS],
        categories=_strings(pick("categories"), "categories"),  # not HF's: lets files carry them
        github_url=_github(pick("githubRepo"), "githubRepo"),
        github_stars=_count(pick("githubStars"), "githubStars"),
        project_url=_url(pick("projectPage"), "projectPage"),
        organization=_organization(pick("organization").get("organization")),
        thumbnail_url=_url(item, "thumbnail"),
        sources=(source,),
    )


def paper_from_row(row: object, source: str) -> Paper:
    """One JSON Lines row (``id``, ``title``, ``abstract``; optional ``authors``,
    ``categories``, ``date``, ``upvotes``) as a Paper; other keys are ignored.
    """
    if not isinstance(row, Mapping):
        raise BadRecord(f"expected an object, got {type(row).__name__}")
    abstract = _text(row, "abstract")
    if abstract is None:
        raise BadRecord("abstract: missing")
    return Paper(
        arxiv_id=_arxiv_id(row.get("id")),
        title=_title(row.get("title")),
        abstract=clean_abstract(abstract),
        authors=_authors(row.get("authors")),
        listed_at=_when(row, "date"),
        upvotes=_count(row, "upvotes") or 0,
        categories=_strings(row, "categories"),
        sources=(source,),
    )


def dedupe(papers: Iterable[tuple[str, Paper]]) -> tuple[list[Paper], list[tuple[str, str]]]:
    """Keep the first paper of each arXiv id; return (kept, [(ref, reason) for the others])."""
    seen: dict[str, str] = {}
    kept: list[Paper] = []
    dropped: list[tuple[str, str]] = []
    for ref, paper in papers:
        if paper.arxiv_id in seen:
            dropped.append((ref, f"duplicate of {seen[paper.arxiv_id]}"))
            continue
        seen[paper.arxiv_id] = ref
        kept.append(paper)
    return kept, dropped
