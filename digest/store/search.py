"""The words a paper is found by, and the words of a search: one tokenizer for both databases.

SQLite (FTS5) and PostgreSQL (tsvector) split and fold text their own ways (FTS5 breaks
``GPT-4`` in two, PostgreSQL also keeps ``gpt-4``; PostgreSQL's ``english`` drops stop words
and stems as FTS5's ``porter`` does not). So Python does it once: a paper's searchable text is
stored already folded and split into plain words (``papers.search_text``), both databases
index those words as they are (FTS5 ``unicode61``, PostgreSQL ``simple``), and a query is
folded by the same function into prefix terms. The same words in, the same papers out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from digest.models import Paper

__all__ = ["MAX_QUERY_WORDS", "fts5_query", "paper_search_text", "search_words", "tsquery"]

# Letters and digits of any script: the characters FTS5's unicode61 and PostgreSQL's default
# parser both keep inside a word, so neither splits a word this function made.
_WORD = re.compile(r"[^\W_]+")
MAX_WORD_CHARS = 40  # longer "words" are base64, hashes or URLs: not something people search
MAX_QUERY_WORDS = 8


# For ASCII text _WORD keeps exactly [A-Za-z0-9]: a byte table that lower-cases letters and
# blanks everything else, then str.split, gives the same words 3x faster than the regex.
_ASCII_WORD_BYTES = (
    bytes((b | 0x20 if chr(b).isupper() else b) if chr(b).isalnum() else 0x20 for b in range(128))
    + b" " * 128
)


# Accents are combining marks after NFKD, and no ASCII character is one: only the runs of
# other characters are looked at one by one (an abstract with one "é": 2x faster).
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


# The same table for folded text, whose case is final (NFKD may turn a folded "ℌ" into "H").
_ASCII_SEPARATOR_BYTES = bytes(b if chr(b).isalnum() else 0x20 for b in range(128)) + b" " * 128


def _without_marks(run: re.Match[str]) -> str:
    # Marks go (they join their letter's word); other non-word characters (dashes, quotes)
    # become spaces, so text whose only non-ASCII characters were those is ASCII again.
    return "".join(c if c.isalnum() else " " for c in run.group() if not unicodedata.combining(c))


def search_words(text: str) -> list[str]:
    """``text`` as lower-case words without accents: ``"Élan GPT-4o"`` -> ``["elan", "gpt", "4o"]``."""
    if text.isascii():  # most abstracts: nothing to fold but case
        words = text.encode("ascii").translate(_ASCII_WORD_BYTES).decode("ascii").split()
    else:
        folded = unicodedata.normalize("NFKD", text.casefold())
        folded = _NON_ASCII.sub(_without_marks, folded)
        if folded.isascii():  # an accent or a dash in English text: split by the table (4x)
            words = folded.encode("ascii").translate(_ASCII_SEPARATOR_BYTES).decode().split()
        else:
            words = _WORD.findall(folded)
    if words and max(map(len, words)) > MAX_WORD_CHARS:
        words = [w for w in words if len(w) <= MAX_WORD_CHARS]
    return words


def paper_search_text(paper: Paper) -> str:
    """What a paper is found by: title, authors, organisation, keywords and abstract, as words."""
    parts: Iterable[str] = (
        paper.title,
        " ".join(paper.authors),
        paper.organization or "",
        " ".join(paper.keywords),
        paper.abstract,
    )
    # Part by part: one accented author name does not send the whole abstract the slow way.
    words: list[str] = []
    for part in parts:
        if part:
            words += search_words(part)
    # Each word once: a search asks whether a paper has a word, never how often, and the
    # full-text indexes store and sort every copy (10,000 papers: PostgreSQL 8% faster).
    return " ".join(dict.fromkeys(words))


def _query_words(query: str) -> list[str]:
    return list(dict.fromkeys(search_words(query)))[:MAX_QUERY_WORDS]


def _prefix(word: str) -> bool:
    # "diffus" finds "diffusion"; a number is itself ("4" in "GPT-4" should not find "400").
    return not word.isdigit()


def fts5_query(query: str) -> str | None:
    """An FTS5 MATCH expression: every word, as a quoted prefix (``"diffus"* "robot"*``).

    Only letters and digits reach it, each quoted, so no input is FTS5 syntax. None: no words.
    """
    words = _query_words(query)
    return " ".join(f'"{w}"*' if _prefix(w) else f'"{w}"' for w in words) or None


def tsquery(query: str) -> str | None:
    """The same search for PostgreSQL's to_tsquery: ``diffus:* & robot:*``. None: no words."""
    words = _query_words(query)
    return " & ".join(f"{w}:*" if _prefix(w) else w for w in words) or None
