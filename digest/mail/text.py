"""Text shaping for emails and pages: one clean line, cut at a sentence, safe links only.

Titles, abstracts and author lists come from outside (feeds, files); what reaches a
template has no control or bidi-override characters and is never cut mid-word.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

from digest.models import Paper

__all__ = [
    "long_date",
    "plural",
    "list_phrase",
    "tidy_text",
    "SUMMARY_CHARS",
    "THUMBNAIL_HOSTS",
    "clean",
    "format_authors",
    "safe_url",
    "shorten",
    "summarize",
    "thumbnail",
]

SUMMARY_CHARS = 320
# C0/C1 controls and the bidi embedding/override characters (they can visually spoof text).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A full stop after an initial ("James P. Carse") or a common abbreviation ends no sentence.
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z])(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bFig)(?<!\bEq)"
    r"[.!?][\"')\]]?(?=\s)"
)
# Where sources host paper thumbnails; emails and pages load images from these hosts only (the
# pages' Content-Security-Policy says the same), so a papers file cannot plant a tracking pixel.
THUMBNAIL_HOSTS = ("cdn-thumbnails.huggingface.co",)


def clean(text: str | None) -> str:
    """``text`` on one line: controls and bidi overrides removed, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(_UNSAFE.sub(" ", text).split())


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a sentence end, else a word boundary, plus "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit * 0.4:
        return head[: ends[-1]]
    space = head.rfind(" ", 0, limit)
    if space >= limit * 0.3:
        return head[:space].rstrip(",;:-–— ") + "…"
    return text[:limit] + "…"  # one giant "word": cutting it is the only option


def summarize(paper: Paper, limit: int = SUMMARY_CHARS) -> str:
    """The source's AI summary, else the first sentences of the abstract, never cut mid-word."""
    if paper.ai_summary and paper.ai_summary.strip():
        return shorten(clean(paper.ai_summary[: limit * 4]), limit)
    return shorten(clean(paper.abstract[: limit * 8]), limit)


def format_authors(authors: tuple[str, ...]) -> str:
    """The first three authors, then "et al."."""
    names = [clean(a) for a in authors[:4] if clean(a)]
    if len(authors) > 3:
        return ", ".join(names[:3]) + " et al."
    return ", ".join(names)


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL (never ``javascript:`` and the like)."""
    if url and urlsplit(url.strip()).scheme in ("http", "https") and not _UNSAFE.search(url):
        return url.strip()
    return None


def thumbnail(url: str | None) -> str | None:
    """``url`` when it is an https image on one of THUMBNAIL_HOSTS, shown where it is hosted."""
    found = safe_url(url)
    if not found:
        return None
    parts = urlsplit(found)
    if parts.scheme != "https" or parts.netloc not in THUMBNAIL_HOSTS:
        return None
    return found


def list_phrase(name: str) -> str:
    """The optional display phrase of List-Id: kept only when it is plain ASCII."""
    if name.isascii() and re.fullmatch(r"[\w .-]+", name):
        return f"{name} "
    return ""


def tidy_text(text: str) -> str:
    """Collapse runs of blank lines in the text part and strip trailing spaces."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def plural(n: int, word: str) -> str:
    """``1 paper``, ``1,234 papers``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def long_date(day: date) -> str:
    """``Friday, 27 November 2026``."""
    return f"{day:%A}, {day.day} {day:%B %Y}"
