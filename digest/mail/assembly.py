"""Every subscriber's digest of one edition, assembled from pieces rendered once per edition.

Rendering digest.mjml and digest.txt for each distinct selection cost ~38 ms; with selections
that differ for nearly everyone (topics, keywords, likes) that was the whole send. The
template still owns the layout: its named blocks ``contents`` (the list of themes), ``theme``
(a theme's header), ``paper`` (one paper) and ``more`` (the "N more papers" link) are
rendered on their own and remembered, and the rest of the template, its skeleton, is
rendered once per edition with a marker where each block goes. A subscriber's email is then
the skeleton's segments and the remembered blocks, joined (digest.mail.pieces).

Per-subscriber values go in by slot: the heading and preheader before finishing (they are
text), the signed links (unsubscribe, preferences, each paper's feedback) after, as in
``PreparedMessage``. Slot markers carry a nonce drawn after the edition's content is fixed,
so a paper cannot spell one. A template without the four blocks, or whose skeleton does not
repeat cleanly, gets ``None`` from :func:`assembly_for`: the caller renders per selection.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from markupsafe import escape

from digest.errors import DigestError
from digest.mail.mime import Slots, SplicedMessage
from digest.mail.pieces import Finisher, PartBuilder, Piece
from digest.mail.render import PaperView, Renderer
from digest.mail.text import clean, shorten
from digest.models import Edition, Message, SelectedPaper, Selection, Subscriber

__all__ = ["BLOCKS", "Assembly", "assembly_for", "same_parts"]

BLOCKS = ("contents", "theme", "paper", "more")
_MEMO = 50_000  # remembered pieces per part; past it the memo starts again
_SENTINEL = 987_654_321  # a count the skeleton must not show outside the blocks


@dataclass(frozen=True, slots=True)
class _Loop:
    """What a block inside a ``for`` loop may ask of ``loop``."""

    index: int

    @property
    def index0(self) -> int:
        return self.index - 1

    @property
    def first(self) -> bool:
        return self.index == 1


def _uses_loop(source: str, name: str, env: jinja2.Environment) -> bool:
    """Whether block ``name`` reads its enclosing loop (then it is remembered per position)."""
    for block in env.parse(source).find_all(nodes.Block):
        if block.name == name:
            inner = {id(n) for f in block.find_all(nodes.For) for b in f.body
                     for n in b.find_all(nodes.Name)}  # fmt: skip
            return any(n.name == "loop" and id(n) not in inner for n in block.find_all(nodes.Name))
    return True


class _Part:
    """One part (HTML or text) of the edition's digests: its skeleton and its blocks."""

    def __init__(self, assembly: Assembly, kind: str, template: jinja2.Template, source: str):
        self.kind, self.template, self.assembly = kind, template, assembly
        a = assembly
        self.finisher = Finisher(kind, a.slot_names, (a.heading_marker, a.preheader_marker))
        self.escape: Callable[[str], str] = (lambda v: str(escape(v))) if kind == "html" else str
        env = template.environment
        self.loops = {name: _uses_loop(source, name, env) for name in ("theme", "paper")}
        self.memo: dict[tuple, Piece] = {}
        self.sections: dict = {}  # runs of pieces (a theme and its papers), see PartBuilder
        self.segments = self._skeleton()

    def _skeleton(self) -> dict[str, Piece]:
        """Render the template once with a marker for each block; cut it at the markers."""
        self.extra = "extra" in self.template.blocks
        marks = {name: f"\x00{name}\x00" for name in (*BLOCKS, "extra")}
        a = self.assembly
        context = {
            **a.edition_vars, "heading": a.heading_marker, "preheader": a.preheader_marker,
            "count": _SENTINEL, "omitted": _SENTINEL, "extra": None,
            "themes": [{"label": "", "papers": [None, None]} for _ in range(2)],
        }  # fmt: skip
        ctx = self.template.new_context(context)
        for name, mark in marks.items():
            ctx.blocks[name] = [lambda _ctx, mark=mark: iter((mark,))]
        out = "".join(self.template.root_render_func(ctx))
        order = "contents theme paper paper theme paper paper more".split()
        if self.extra:
            order.insert(1, "extra")
        cuts, at = [], 0
        for name in order:
            found = out.find(marks[name], at)
            if found < 0:
                raise _Unfit(f"block {name} is not where the shipped layout has it")
            cuts.append((found, found + len(marks[name])))
            at = found + len(marks[name])
        if "\x00" in out[at:]:
            raise _Unfit("a block appears more often than the shipped layout has it")
        texts = [out[: cuts[0][0]]]
        texts += [out[cuts[i][1] : cuts[i + 1][0]] for i in range(len(cuts) - 1)]
        texts.append(out[cuts[-1][1] :])
        c_e = texts.pop(1) if self.extra else ""  # between contents and extra; then extra-theme
        start, c_t, t_p, p_p, p_t, t_p2, p_p2, p_m, end = texts
        if (t_p, p_p) != (t_p2, p_p2):
            raise _Unfit("themes or papers are not laid out alike")
        end = end.rstrip("\n") if self.kind == "html" else end
        names = ("start", "contents_extra", "contents_theme", "theme_paper", "paper_paper",
                 "paper_theme", "paper_more", "end")  # fmt: skip
        texts = (start, c_e, c_t, t_p, p_p, p_t, p_m, end)
        return {n: self.finisher.piece(t) for n, t in zip(names, texts, strict=True)}

    def block(self, name: str, key: tuple, variables: dict[str, Any]) -> Piece:
        """Block ``name`` rendered with ``variables``, remembered under ``key``."""
        memo_key = (name, key)
        piece = self.memo.get(memo_key)
        if piece is None:
            ctx = self.template.new_context({**self.assembly.edition_vars, **variables})
            text = "".join(self.template.blocks[name](ctx))
            piece = self.finisher.piece(text)
            if len(self.memo) >= _MEMO:
                self.memo.clear()
            self.memo[memo_key] = piece
        return piece


class _Unfit(Exception):
    """The template cannot be assembled from pieces (it is rendered per selection instead)."""


class Assembly:
    """Digests of one edition for any selection, from pieces rendered once."""

    def __init__(self, renderer: Renderer, edition: Edition) -> None:
        self.renderer, self.edition = renderer, edition
        nonce = secrets.token_hex(16)
        self.slots = Slots.new()
        self.feedback_slot = self.slots.feedback()
        self.slot_names = (self.slots.unsubscribe, self.slots.preferences, self.feedback_slot)
        self.heading_marker = f"DIGEST-TEXT-HEADING-{nonce}"
        self.preheader_marker = f"DIGEST-TEXT-PREHEADER-{nonce}"
        self.edition_vars = {
            **renderer.edition_context(edition),
            "unsubscribe_url": self.slots.unsubscribe,
            "preferences_url": self.slots.preferences,
        }
        self.feedback_url = renderer.feedback_url(self.feedback_slot)
        templates = renderer.templates
        self.parts = {}
        for kind, name in (("html", "digest.mjml"), ("text", "digest.txt")):
            env = templates.html_env if kind == "html" else templates.text_env
            template = env.get_template(name)
            if any(b not in template.blocks for b in BLOCKS):
                raise _Unfit(f"{name} has not the blocks {', '.join(BLOCKS)}")
            source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
            self.parts[kind] = _Part(self, kind, template, source)
        # Per paper count: the subject and the envelope around it; per count and number of
        # themes: the heading; per first titles: the preheader (each the same in many emails).
        self._envelopes: dict[int, SplicedMessage] = {}
        self._headings: dict[tuple[int, int], str] = {}
        self._preheaders: dict[tuple[str, ...], str] = {}
        self._views: dict[tuple, PaperView] = {}
        self._labels: dict[str, str] = {}  # a theme's label as shown
        self.thumbnails = renderer.settings.thumbnails

    def _view(self, selected: SelectedPaper, lead: bool) -> PaperView:
        key = (selected.paper.arxiv_id, selected.why, lead)
        view = self._views.get(key)
        if view is None:
            view = PaperView.of(selected, thumbnail=lead, feedback=self.feedback_url)
            if len(self._views) >= _MEMO:
                self._views.clear()
            self._views[key] = view
        return view

    def message(
        self, subscriber: Subscriber, selection: Selection, extra: Any = None
    ) -> Message | None:
        """The subscriber's email of ``selection``; None when it has no papers (render it alone).

        ``extra``: this subscriber's own section (say, papers of their earlier emails), shown
        by the templates' optional ``extra`` block; rendered per email, None: the block empty.
        """
        themes = [t for t in selection.themes if t.papers]
        if not themes:
            return None
        r = self.renderer
        sid = r._id(subscriber)
        unsubscribe, preferences = r.links(subscriber)
        sign = r.signer.make_feedback
        lead = self.thumbnails
        shown = []  # per theme: its label, papers, their keys (what each shows) and tokens
        for t in themes:
            label = self._labels.get(t.label)
            if label is None:
                label = self._labels[t.label] = clean(t.label) or "Papers"
            keys = tuple((p.paper.arxiv_id, p.why, lead and i == 0) for i, p in enumerate(t.papers))
            tokens = [sign(sid, p.paper.arxiv_id) for p in t.papers]
            shown.append(_Shown(label, t.papers, keys, tokens))
        count = sum(len(t.papers) for t in shown)
        firsts = [(p, lead and i == 0) for t in shown for i, p in enumerate(t.papers[:3])][:3]
        titles = tuple(self._view(p, first).title for p, first in firsts)
        preheader = self._preheaders.get(titles)
        if preheader is None:
            if len(self._preheaders) >= _MEMO:
                self._preheaders.clear()
            preheader = shorten("Top papers: " + "; ".join(titles), 140)
            self._preheaders[titles] = preheader
        heading = self._headings.get((count, len(themes)))
        if heading is None:
            heading = r.heading(self.edition, count, len(themes))
            self._headings[count, len(themes)] = heading
        content = {self.heading_marker: heading, self.preheader_marker: preheader}
        values = {"s0": unsubscribe, "s1": preferences}  # the order of self.slot_names
        joined = {
            kind: self._join(part, shown, selection.omitted, content, values, extra)
            for kind, part in self.parts.items()
        }
        (text_bytes, text), (html_bytes, html) = joined["text"], joined["html"]
        envelope = self._envelopes.get(count)
        if envelope is None:
            subject = r.subject(self.edition, count)
            envelope = self._envelopes[count] = r._spliced(subject, "", "", ())
        subject = envelope.subject
        unsubscribe_headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        raw, headers = envelope.wrap(subscriber.email, text_bytes, html_bytes, unsubscribe_headers)
        return Message(sender=envelope.sender, recipient=subscriber.email, subject=subject,
                       text=text, html=html, headers=headers, raw=raw)  # fmt: skip

    def _join(
        self, part: _Part, shown: list[_Shown], omitted: int, content: dict, values: dict,
        extra: Any,
    ) -> tuple[bytes, str]:  # fmt: skip
        """One part of one email: the skeleton's segments around the remembered blocks."""
        seg, block = part.segments, part.block
        out = PartBuilder(part.finisher, content, part.escape)
        add = out.add
        add(seg["start"], values)
        key = tuple((t.label, len(t.papers)) for t in shown)
        piece = part.memo.get(("contents", key))
        if piece is None:
            themes = [self._theme(t) for t in shown]
            piece = block("contents", key, {"themes": themes, "count": _SENTINEL})
        add(piece, values)
        if part.extra:
            add(seg["contents_extra"], values)
            if extra is None:
                add(block("extra", (), {"extra": None}), values)
            else:  # each subscriber's own: not remembered
                ctx = part.template.new_context({**self.edition_vars, "extra": extra})
                add(part.finisher.piece("".join(part.template.blocks["extra"](ctx))), values)
        add(seg["contents_theme"], values)
        theme_loop = part.loops["theme"]
        for ti, theme in enumerate(shown):
            skey = (ti > 0, theme.label, ti + 1 if theme_loop else 0, theme.keys)
            pieces = functools.partial(self._section, part, ti, theme)
            out.section(part.sections, skey, pieces, theme.tokens, values)
        add(seg["paper_more"], values)
        add(block("more", (omitted,), {"omitted": omitted}), values)
        add(seg["end"], values)
        return out.finish(values)

    def _theme(self, theme: _Shown) -> dict[str, Any]:
        """What the templates see of a theme: its label and its papers' views."""
        lead = self.thumbnails
        views = [self._view(p, lead and i == 0) for i, p in enumerate(theme.papers)]
        return {"label": theme.label, "papers": views}

    def _section(self, part: _Part, ti: int, theme: _Shown) -> list[tuple[Piece, int]]:
        """The pieces of one theme of an email: its header, then each paper (and the joins)."""
        seg, block = part.segments, part.block
        shown = self._theme(theme)
        label, papers = theme.label, shown["papers"]
        pieces = [(seg["paper_theme"], -1)] if ti else []
        tkey = (label, len(papers), ti + 1 if part.loops["theme"] else 0)
        pieces.append((block("theme", tkey, {"theme": shown, "loop": _Loop(ti + 1)}), -1))
        pieces.append((seg["theme_paper"], -1))
        paper_loop = part.loops["paper"]
        for pi, view in enumerate(papers):
            if pi:
                pieces.append((seg["paper_paper"], -1))
            pkey = ((view.url, view.why, view.thumbnail, label), pi + 1 if paper_loop else 0)
            variables = {"p": view, "theme": shown, "loop": _Loop(pi + 1)}
            pieces.append((block("paper", pkey, variables), pi))
        return pieces


@dataclass(frozen=True, slots=True)
class _Shown:
    """One theme of one email: its label, its papers, what each shows, each one's token."""

    label: str
    papers: tuple[SelectedPaper, ...]
    keys: tuple[tuple[str, str, bool], ...]  # per paper: arXiv id, why, shown as the lead
    tokens: list[str]


def assembly_for(renderer: Renderer, edition: Edition) -> Assembly | None:
    """The edition's Assembly, or None when its templates cannot be assembled from pieces."""
    try:
        return Assembly(renderer, edition)
    except (_Unfit, jinja2.TemplateError):
        return None
    except DigestError:
        raise


def same_parts(a: Message, b: Message) -> bool:
    """Whether two messages show the same subject, text and HTML (links included)."""
    return (a.subject, a.text, a.html) == (b.subject, b.text, b.html)
