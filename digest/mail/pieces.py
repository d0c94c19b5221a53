"""Rendered pieces of an email, encoded once, joined per subscriber into finished parts.

What makes an HTML or text part out of a rendered template is line by line: the HTML is made
7-bit and its long lines wrapped (``mime.seven_bit_html``), the text's lines lose trailing
spaces and its runs of blank lines become one (``text.tidy_text``), and each is encoded
line by line (7bit, quoted-printable). So a piece's complete lines are finished and encoded
once; only a line a piece shares with its neighbour (rare: the shipped templates put pieces on
lines of their own), a line holding a per-subscriber value (the heading) and the blank lines
at the joins are done per subscriber. Lines holding link slots keep the slots as split parts
and get each subscriber's URLs spliced in, exactly as ``mime.SplicedMessage`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from digest.mail.mime import CRLF, encode_html, encode_text, seven_bit_html

__all__ = ["Finisher", "Piece", "PartBuilder"]


@dataclass(frozen=True, slots=True)
class _Static:
    """Finished lines: their encoded bytes and their text."""

    encoded: bytes
    text: str


@dataclass(frozen=True, slots=True)
class _Slotted:
    """One finished line with link slots, as a format string: ``{s0}`` where slot 0 goes."""

    format: str


@dataclass(frozen=True, slots=True)
class _Content:
    """A raw line holding per-subscriber values (the heading): finished per subscriber."""

    line: str


_BLANK = _Static(CRLF.encode(), "")  # a text part's blank line (runs of them become one)
Chunk = _Static | _Slotted | _Content


@dataclass(frozen=True, slots=True)
class Piece:
    """A rendered piece: its first partial line, finished complete lines, last partial line.

    ``head_done``/``tail_done`` are the head and tail finished as whole lines, for when the
    piece starts (or the next one starts) a line. ``tail`` is None when the piece has no
    line break at all (then ``head`` is all of it).
    """

    head: str
    head_done: tuple[Chunk, ...]
    body: tuple[Chunk, ...]
    tail: str | None
    tail_done: tuple[Chunk, ...]
    opening: tuple[Chunk, ...] = ()  # head_done + body: the piece when it starts a line
    # What adding the piece does from a builder state (pending line, after a blank line):
    # filled by PartBuilder as it goes, so each piece is finished once per state, not per email.
    steps: dict[tuple[str | None, bool], _Step] = field(
        default_factory=dict, compare=False, repr=False
    )


@dataclass(frozen=True, slots=True)
class _Step:
    """Adding one piece from one builder state: the chunks it puts, merged, and the state after."""

    chunks: tuple[Chunk, ...]
    pending: str | None
    pending_done: tuple[Chunk, ...] | None
    blank: bool


_STEPS = 1024  # states remembered per piece: a segment after a paper gets one per paper


@dataclass(frozen=True, slots=True)
class _Section:
    """A run of pieces added from one builder state, ready to replay: the static chunks between
    slotted lines (bytes and lines, as tuples to extend with), each slotted line with the
    paper whose token fills its slot s2 (-1: the token of the paper before the run), and the
    builder state after."""

    runs: tuple[tuple[tuple[bytes, ...], tuple[str, ...]], ...]  # one more than slots
    slots: tuple[tuple[str, int], ...]
    pending: str | None
    pending_done: tuple[Chunk, ...] | None
    blank: bool

    @classmethod
    def of(
        cls, recorded: list[tuple[Chunk, int]], pending: str | None,
        pending_done: tuple[Chunk, ...] | None, blank: bool,
    ) -> _Section:  # fmt: skip
        """The section of the chunks ``recorded`` (each with its paper) as they were put."""
        runs, slots, run = [], [], []
        for chunk, at in recorded:
            if chunk.__class__ is _Slotted:
                runs.append(run)
                slots.append((chunk.format, at))  # type: ignore[union-attr]
                run = []
            else:
                run.append(chunk)
        runs.append(run)
        return cls(
            tuple((tuple(c.encoded for c in r), tuple(c.text for c in r)) for r in runs),  # type: ignore[union-attr]
            tuple(slots), pending, pending_done, blank,
        )  # fmt: skip


# Sections remembered per part. Each holds references to chunks the pieces hold anyway (about
# 1 KB with its key), so 5,000 stay well inside the memory budget even when every email's
# themes show different papers; past it the memo starts again.
_SECTIONS = 5_000


class Finisher:
    """Turns rendered lines into finished chunks for one part ("html" or "text")."""

    def __init__(self, kind: str, slots: Sequence[str], content: Sequence[str]) -> None:
        self.html = kind == "html"
        self._slots = re.compile("(" + "|".join(map(re.escape, slots)) + ")")
        self._slot_keys = {slot: f"s{i}" for i, slot in enumerate(slots)}
        self._content = tuple(content)
        self._lines: dict[str, tuple[Chunk, ...]] = {}

    def line(self, line: str) -> tuple[Chunk, ...]:
        """Finished chunks of one line, remembered: joins and headings repeat across emails."""
        done = self._lines.get(line)
        if done is None:
            if len(self._lines) >= 20_000:
                self._lines.clear()
            done = self._lines[line] = self.lines([line])
        return done

    def piece(self, text: str) -> Piece:
        """``text`` as a Piece (line breaks inside it are finished now)."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            return Piece(text, self.lines([text]), (), None, ())
        head, _, rest = text.partition("\n")
        middle, _, tail = rest.rpartition("\n")
        body = self.lines(middle.split("\n")) if _ else ()
        head_done = self.lines([head])
        return Piece(head, head_done, body, tail, self.lines([tail]), head_done + body)

    def lines(self, lines: Sequence[str]) -> tuple[Chunk, ...]:
        """Finished chunks of whole ``lines``; lines with per-subscriber values stay raw."""
        chunks: list[Chunk] = []
        run: list[str] = []
        for line in lines:
            if any(marker in line for marker in self._content):
                chunks.extend(self._run(run))
                chunks.append(_Content(line))
                run = []
            else:
                run.append(line)
        chunks.extend(self._run(run))
        return tuple(chunks)

    def _run(self, lines: list[str]) -> list[Chunk]:
        if not lines:
            return []
        if self.html:
            lines = seven_bit_html("\n".join(lines)).split("\n")
            return self._group(lines)
        lines = [line.rstrip() for line in lines]
        chunks: list[Chunk] = []
        start, end = 0, len(lines)
        while start < end and not lines[start]:
            start += 1
        while end > start and not lines[end - 1]:
            end -= 1
        core = [line for i, line in enumerate(lines[start:end]) if line or lines[start + i - 1]]
        if start > 0:
            chunks.append(_BLANK)
        chunks.extend(self._group(core))
        if end < len(lines) and end > start:
            chunks.append(_BLANK)
        return chunks

    def _group(self, lines: list[str]) -> list[Chunk]:
        """Consecutive lines without slots as one encoded chunk; each slotted line alone."""
        encode = encode_html if self.html else encode_text
        chunks: list[Chunk] = []
        static: list[str] = []
        for line in lines:
            parts = self._slots.split(line)
            if len(parts) == 1:
                static.append(line)
                continue
            if static:
                chunks.append(_Static(encode(CRLF.join(static) + CRLF), "\n".join(static)))
                static = []
            keys = self._slot_keys
            chunks.append(_Slotted("".join(
                "{" + keys[p] + "}" if i % 2 else p.replace("{", "{{").replace("}", "}}")
                for i, p in enumerate(parts)
            )))  # fmt: skip
        if static:
            chunks.append(_Static(encode(CRLF.join(static) + CRLF), "\n".join(static)))
        return chunks


class PartBuilder:
    """Joins pieces into one finished part for one subscriber."""

    def __init__(
        self,
        finisher: Finisher,
        content: Mapping[str, str],
        escape: Callable[[str], str],
    ) -> None:
        self._finisher = finisher
        self._html = finisher.html
        self._encode = encode_html if finisher.html else encode_text
        self._content = {marker: escape(value) for marker, value in content.items()}
        self.encoded: list[bytes] = []
        self.text: list[str] = []
        self._blank = True  # at the start, and after a blank line: blank lines are dropped
        self._pending: str | None = None  # the line begun and not ended yet
        self._pending_done: tuple[Chunk, ...] | None = None
        self._recorded: list[Chunk] | None = None  # chunks put by the piece being added
        self._section: list[tuple[Chunk, int]] | None = None  # ... and by the section
        self._at = -1  # the section's paper being added (its token fills slot "s2")
        self._contents = 0  # per-subscriber lines put so far: such a step is not remembered

    def add(self, piece: Piece, values: Mapping[str, str]) -> None:
        """Append ``piece``, slot ``i`` (of the Finisher's slots) filled from ``values["si"]``."""
        state = (self._pending, self._blank)
        step = piece.steps.get(state)
        if step is None:  # first time from this state: finish it line by line, and remember
            self._recorded, contents = [], self._contents
            self._add(piece, values)
            if self._contents == contents and len(piece.steps) < _STEPS:
                piece.steps[state] = _Step(
                    _merged(self._recorded), self._pending, self._pending_done, self._blank
                )
            self._recorded = None
            return
        if self._section is not None:
            self._section.extend((chunk, self._at) for chunk in step.chunks)
        encoded, text = self.encoded, self.text
        for chunk in step.chunks:
            if chunk.__class__ is _Slotted:
                line = chunk.format.format_map(values)  # type: ignore[union-attr]
                encoded.append(self._encode(line + CRLF))
                text.append(line)
            else:
                encoded.append(chunk.encoded)  # type: ignore[union-attr]
                text.append(chunk.text)  # type: ignore[union-attr]
        self._pending, self._pending_done, self._blank = step.pending, step.pending_done, step.blank

    def section(
        self,
        memo: dict[Hashable, _Section],
        key: Hashable,
        pieces: Callable[[], Iterable[tuple[Piece, int]]],
        tokens: Sequence[str],
        values: dict[str, str],
    ) -> None:
        """Add a run of pieces (a theme and its papers) remembered in ``memo`` under ``key``.

        ``pieces()`` gives each piece and the index in ``tokens`` of the paper it shows (-1:
        none); it is called only the first time ``key`` comes from this builder state. Then
        each email replays the run's chunks, each paper's token in slot ``s2``: a handful of
        appends instead of finishing a dozen pieces.
        """
        if self._section is not None:
            raise ValueError("sections do not nest")
        state = (key, self._pending, self._blank)
        step = memo.get(state)
        if step is None:
            self._section, contents = [], self._contents
            for piece, at in pieces():
                if at >= 0:  # a paper: slot s2 holds its token until the next paper's
                    self._at, values["s2"] = at, tokens[at]
                self.add(piece, values)
            self._at, recorded, self._section = -1, self._section, None
            if self._contents == contents:
                if len(memo) >= _SECTIONS:
                    memo.clear()
                memo[state] = _Section.of(recorded, self._pending, self._pending_done, self._blank)
            return
        encoded, text, runs = self.encoded, self.text, step.runs
        for i, (line_format, at) in enumerate(step.slots):
            encoded.extend(runs[i][0])
            text.extend(runs[i][1])
            if at >= 0:
                values["s2"] = tokens[at]
            line = line_format.format_map(values)
            encoded.append(self._encode(line + CRLF))
            text.append(line)
        encoded.extend(runs[-1][0])
        text.extend(runs[-1][1])
        self._pending, self._pending_done, self._blank = step.pending, step.pending_done, step.blank
        if tokens:  # as after adding the pieces one by one: the line of the last paper may be
            values["s2"] = tokens[-1]  # ended by the next piece, with that paper's token

    def _add(self, piece: Piece, values: Mapping[str, str]) -> None:
        if piece.tail is None:
            if self._pending is None:
                self._pending, self._pending_done = piece.head, piece.head_done
            else:
                self._pending, self._pending_done = self._pending + piece.head, None
            return
        if self._pending is None:
            self._put(piece.opening, values)
        else:
            if not piece.head and self._pending_done is not None:
                self._put(self._pending_done, values)
            else:
                self._put(self._finisher.line(self._pending + piece.head), values)
            self._put(piece.body, values)
        self._pending, self._pending_done = piece.tail, piece.tail_done
        if not piece.tail:
            self._pending = self._pending_done = None

    def finish(self, values: Mapping[str, str]) -> tuple[bytes, str]:
        """The part's encoded bytes and its text."""
        if self._pending is not None:
            done = self._pending_done
            self._put(done if done is not None else self._finisher.line(self._pending), values)
        if not self._html and self._blank and self.text:
            self.encoded.pop()  # a text part ends without blank lines
            self.text.pop()
        text = "\n".join(self.text)
        return b"".join(self.encoded), text if self._html else text + "\n"

    def _put(self, chunks: Sequence[Chunk], values: Mapping[str, str]) -> None:
        encoded, text, recorded, section = self.encoded, self.text, self._recorded, self._section
        for chunk in chunks:
            kind = chunk.__class__
            if kind is _Static:
                if chunk is _BLANK and not self._html:
                    if self._blank:
                        continue
                    self._blank = True
                else:
                    self._blank = False
                encoded.append(chunk.encoded)  # type: ignore[union-attr]
                text.append(chunk.text)  # type: ignore[union-attr]
                if recorded is not None:
                    recorded.append(chunk)
                if section is not None:
                    section.append((chunk, self._at))
            elif kind is _Slotted:
                line = chunk.format.format_map(values)  # type: ignore[union-attr]
                encoded.append(self._encode(line + CRLF))
                text.append(line)
                self._blank = False
                if recorded is not None:
                    recorded.append(chunk)
                if section is not None:
                    section.append((chunk, self._at))
            else:
                self._contents += 1
                line = chunk.line  # type: ignore[union-attr]
                for marker, value in self._content.items():
                    line = line.replace(marker, value)
                self._put(self._finisher.line(line), values)


def _merged(chunks: list[Chunk]) -> tuple[Chunk, ...]:
    """Runs of static chunks as one (bytes and lines joined); blank lines stay apart, since
    ``PartBuilder.finish`` drops a text part's last blank line."""
    out: list[Chunk] = []
    run: list[_Static] = []
    for chunk in [*chunks, None]:
        if chunk.__class__ is _Static and chunk is not _BLANK:
            run.append(chunk)  # type: ignore[arg-type]
            continue
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(_Static(b"".join(c.encoded for c in run), "\n".join(c.text for c in run)))
        run = []
        if chunk is not None:
            out.append(chunk)
    return tuple(out)
