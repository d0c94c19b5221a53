"""The `file` source: papers from a Hugging Face daily-papers JSON list or from JSON Lines.

Lets digest run offline (the demo, tests, an export from elsewhere). A bad record is skipped
and reported; a file that cannot be read at all is one DigestError with a one-line message.
Limits: a file of at most MAX_FILE_BYTES, JSON nested at most MAX_JSON_DEPTH levels (the hf
source reads its responses with the same `load_json`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from digest.errors import DigestError
from digest.sources import Skipped, SourceResult
from digest.sources.normalize import (
    MAX_NUMBER_DIGITS,
    BadRecord,
    dedupe,
    paper_from_hf,
    paper_from_row,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "FileSource",
    "from_hf_items",
    "load_json",
    "load_papers",
    "parse_papers",
]

# A papers file is a day's listing (tens to thousands of papers, a few MB). Far bigger is a
# mistake (the wrong file) and would be read into memory whole.
MAX_FILE_BYTES = 200 * 1024 * 1024
# A daily-papers item nests 6 levels (list, item, paper, authors, author, user). Python's parser
# recurses once per level and dies with RecursionError near 1,000 levels (less on a deep
# stack); checking the depth first turns that into one line, at a limit that does not move.
MAX_JSON_DEPTH = 100

# A JSON string, or a run of characters that are neither brackets nor quotes: removing both
# leaves only the brackets that nest (a bracket inside a string does not). The closing quote
# is optional so an unterminated string ends the scan instead of being retried at every quote
# (linear time on any input; json.loads then reports the syntax error).
_NOT_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[^\[\]{}"]+', re.DOTALL)
_NESTING_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _too_deep(text: str) -> bool:
    """True when the brackets of JSON ``text`` nest deeper than MAX_JSON_DEPTH.

    About 2x json.loads' time, in C; text with too few brackets to nest that deep (every
    JSON Lines row of a papers file) is told apart 20x faster by counting them.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    brackets = _NOT_NESTING.sub("", text)
    depths = itertools.accumulate(map(_NESTING_STEP.__getitem__, brackets))
    return max(depths, default=0) > MAX_JSON_DEPTH


def _bounded_int(digits: str) -> int | float:
    # Python refuses to convert over 4,300 digits to int, which would fail the whole file;
    # as infinity, the one record holding it is skipped ("more than MAX_COUNT").
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


# One decoder for every row: json.loads(text, parse_int=...) builds a new one each call
# (a tenth of parsing a 10,000-row JSON Lines file).
_DECODER = json.JSONDecoder(parse_int=_bounded_int)


def load_json(text: str) -> object:
    """Parse JSON text nested at most MAX_JSON_DEPTH levels.

    Raises json.JSONDecodeError for bad syntax, and ValueError("nested deeper than N levels")
    for deeper nesting. Numbers of over MAX_NUMBER_DIGITS digits become +/- infinity.
    """
    too_deep = f"nested deeper than {MAX_JSON_DEPTH} levels"
    if _too_deep(text):
        raise ValueError(too_deep)
    try:
        if text.startswith("\ufeff"):  # json.loads' own error for a BOM, as before
            return json.loads(text, parse_int=_bounded_int)
        return _DECODER.decode(text)
    except RecursionError:  # not below the limit, unless the caller's stack is already deep
        raise ValueError(too_deep) from None


@dataclass(frozen=True, slots=True)
class FileSource:
    """Reads one papers file; ``day`` is ignored (the file is the listing)."""

    path: Path
    name: str = "file"

    def fetch(self, day: date | None = None) -> SourceResult:
        """All usable papers of the file."""
        return load_papers(self.path)


def load_papers(path: Path | str, *, source: str = "file") -> SourceResult:
    """Read a papers file: an HF daily-papers JSON list, or JSON Lines with id/title/abstract.

    Raises DigestError (one line naming the file) when the file as a whole is unreadable.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DigestError(
                f"{path}: {size:,} bytes is more than a papers file may have "
                f"({MAX_FILE_BYTES // 2**20} MB)"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise DigestError(f"{path}: no such papers file") from None
    except IsADirectoryError:
        raise DigestError(f"{path}: is a folder, not a papers file") from None
    except OSError as exc:
        raise DigestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return parse_papers(data, source=source)
    except DigestError as exc:
        raise DigestError(f"{path}: {exc}") from None


def parse_papers(data: bytes, *, source: str) -> SourceResult:
    """Parse the bytes of a papers file (see `load_papers`); errors do not name the file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DigestError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    stripped = text.lstrip()
    if not stripped:
        raise DigestError("the file is empty")
    if stripped[0] == "[":
        try:
            items = load_json(text)
        except json.JSONDecodeError as exc:
            raise DigestError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except ValueError as exc:  # nested too deep
            raise DigestError(str(exc)) from None
        return from_hf_items(items, source=source, ref=lambda i: f"#{i}")
    return _from_json_lines(text, source=source)


def from_hf_items(items: object, *, source: str, ref=lambda i: f"#{i}") -> SourceResult:
    """Normalise a list of HF daily-papers items, skipping (and reporting) the bad ones."""
    if not isinstance(items, list):
        raise DigestError(
            f"expected a JSON list of Hugging Face daily papers, got {type(items).__name__}"
        )
    parsed: list[tuple[str, object]] = []
    skipped: list[Skipped] = []
    for index, item in enumerate(items):
        try:
            paper = paper_from_hf(item, source)
        except BadRecord as exc:
            skipped.append(Skipped(_ref(ref(index), item), str(exc)))
            continue
        parsed.append((f"{ref(index)} ({paper.arxiv_id})", paper))
    papers, duplicates = dedupe(parsed)
    skipped.extend(Skipped(r, why) for r, why in duplicates)
    return SourceResult(papers=papers, skipped=skipped)


def _from_json_lines(text: str, *, source: str) -> SourceResult:
    parsed: list[tuple[str, object]] = []
    skipped: list[Skipped] = []
    seen_object = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = load_json(line)
        except json.JSONDecodeError as exc:
            if not seen_object:
                # The first record already fails: this is not JSON Lines (nor a JSON list).
                raise DigestError(
                    f"neither a JSON list nor JSON Lines: line {number}: {exc.msg}"
                ) from None
            skipped.append(Skipped(f"line {number}", f"not valid JSON: {exc.msg}"))
            continue
        except ValueError as exc:  # nested too deep: this line only
            skipped.append(Skipped(f"line {number}", str(exc)))
            continue
        if not seen_object and not (isinstance(row, dict) and ({"id", "title"} & row.keys())):
            # A wrapper object ({"papers": [...]}) or a bare value: not a papers file at all.
            raise DigestError(
                f"neither a JSON list nor JSON Lines of papers: line {number} "
                "has no id or title (expected HF daily papers or rows with id, title, abstract)"
            )
        seen_object = True
        try:
            paper = paper_from_row(row, source)
        except BadRecord as exc:
            skipped.append(Skipped(_ref(f"line {number}", row, key="id"), str(exc)))
            continue
        parsed.append((f"line {number} ({paper.arxiv_id})", paper))
    papers, duplicates = dedupe(parsed)
    skipped.extend(Skipped(r, why) for r, why in duplicates)
    return SourceResult(papers=papers, skipped=skipped)


def _ref(where: str, record: object, key: str = "paper") -> str:
    """``#3`` or ``#3 (2410.17243)``: the position, and the id when the record has one."""
    raw = None
    if isinstance(record, dict):
        raw = record.get(key)
        if isinstance(raw, dict):
            raw = raw.get("id")
    if isinstance(raw, str) and raw.strip():
        shown = "".join(c for c in raw.strip()[:40] if c.isprintable())  # no terminal escapes
        return f"{where} ({shown})"
    return where
