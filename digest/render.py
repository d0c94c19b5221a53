"""Emails and the "view in browser" page: MJML compiled once per template, Jinja per content.

Each ``.mjml`` template is compiled by mjml-python ONCE into HTML that still holds its Jinja
tags, then loaded as a Jinja2 template (autoescape on). A digest is rendered once per distinct
Selection with placeholder links; :meth:`PreparedMessage.for_subscriber` splices each
subscriber's signed links and headers into the pre-encoded bytes (see digest.mail).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import jinja2
import mjml

from digest.config import Settings
from digest.errors import DigestError
from digest.mail import SplicedMessage, check_header
from digest.models import (
    Edition,
    Frequency,
    Message,
    Paper,
    SelectedPaper,
    SelectedTheme,
    Selection,
    Subscriber,
)
from digest.tokens import Purpose, Signer

__all__ = [
    "PaperView",
    "PreparedMessage",
    "Renderer",
    "TemplateSet",
    "format_authors",
    "full_selection",
    "select_for",
    "summarize",
    "wrap_text",
]

UNSUBSCRIBE_SLOT = "DIGEST-SLOT-UNSUBSCRIBE-URL-7c1d"
PREFERENCES_SLOT = "DIGEST-SLOT-PREFERENCES-URL-7c1d"
SLOTS = (UNSUBSCRIBE_SLOT, PREFERENCES_SLOT)
SUMMARY_CHARS = 320
TITLE_CHARS = 300
# C0/C1 controls and the bidi embedding/override characters (they can visually spoof text).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s)")
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


# --- text shaping -------------------------------------------------------------------------


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


def wrap_text(text: str, width: int = 78, indent: str = "", first: str = "") -> str:
    """Wrap ``text`` at ``width`` columns without breaking words or URLs (text part)."""
    return textwrap.fill(
        str(text),
        width=width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@dataclass(frozen=True, slots=True)
class PaperView:
    """What the templates show of one paper."""

    title: str
    url: str
    byline: str
    signals: tuple[str, ...]
    summary: str
    links: tuple[tuple[str, str], ...]
    why: str = ""

    @classmethod
    def of(cls, selected: SelectedPaper) -> PaperView:
        """Shape a selected paper for display (escaping is the template's job)."""
        paper = selected.paper
        byline = format_authors(paper.authors)
        if paper.organization and clean(paper.organization):
            byline = (
                f"{byline} · {clean(paper.organization)}" if byline else clean(paper.organization)
            )
        signals = []
        if paper.upvotes:
            signals.append(_plural(paper.upvotes, "upvote"))
        if paper.comments:
            signals.append(_plural(paper.comments, "comment"))
        if paper.github_stars:
            signals.append(_plural(paper.github_stars, "GitHub star"))
        links = [("arXiv", paper.abs_url)] if paper.url != paper.abs_url else []
        links.append(("PDF", paper.pdf_url))
        for label, url in (("Code", paper.github_url), ("Project", paper.project_url)):
            if safe_url(url):
                links.append((label, safe_url(url)))
        return cls(
            title=shorten(clean(paper.title[: TITLE_CHARS * 4]), TITLE_CHARS) or paper.arxiv_id,
            url=paper.url,
            byline=byline,
            signals=tuple(signals),
            summary=summarize(paper),
            links=tuple(links),
            why=shorten(clean(selected.why), 200),
        )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def full_selection(edition: Edition, max_papers: int | None = None) -> Selection:
    """Every paper of ``edition`` as one Selection, the rest past ``max_papers`` omitted.

    For the web archive page and for previews when no per-subscriber selection applies.
    """
    left = max_papers if max_papers is not None else len(edition.papers)
    themes = []
    for theme in edition.themes:
        take = theme.papers[: max(left, 0)]
        left -= len(take)
        if take:
            themes.append(SelectedTheme(theme.label, tuple(SelectedPaper(p) for p in take)))
    shown = sum(len(t.papers) for t in themes)
    return Selection(tuple(themes), omitted=len(edition.papers) - shown)


def select_for(edition: Edition, subscriber: Subscriber, settings: Settings) -> Selection:
    """What ``subscriber`` gets of ``edition``: digest.rank.select when present, else all papers.

    Used by previews; delivery calls digest.rank itself.
    """
    limit = subscriber.max_papers or settings.max_papers
    try:
        from digest.rank import select
        from digest.taxonomy import load_taxonomy
    except ImportError:  # ranking not installed yet: every paper, up to the limit
        return full_selection(edition, limit)
    taxonomy = load_taxonomy(settings.taxonomy_file)
    now = datetime.now(UTC)
    return select(edition, subscriber, taxonomy=taxonomy, default_max=settings.max_papers, now=now)


# --- templates ----------------------------------------------------------------------------


class TemplateSet:
    """Loads templates (an override folder first, then the shipped ones) and compiles MJML once."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = Path(override_dir) if override_dir else None
        self.html_env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load_html),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.text_env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load_text),
            autoescape=False,  # noqa: S701 - the text/plain part is not HTML
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.text_env.filters["wrap"] = wrap_text
        self._sources: dict[str, str] = {}  # template name -> its MJML source, for errors

    def source(self, name: str) -> tuple[str, str]:
        """``(text, filename)`` of template ``name``, from the override folder when it has it."""
        if self.override_dir and (self.override_dir / name).is_file():
            path = self.override_dir / name
            return path.read_text(encoding="utf-8"), str(path)
        shipped = resources.files("digest.templates").joinpath(name)
        if not shipped.is_file():
            raise DigestError(f"template not found: {name}")
        return shipped.read_text(encoding="utf-8"), f"templates/{name}"

    def mtimes(self) -> tuple[float, ...]:
        """Modification times of every template file (the preview server reloads on change)."""
        folders = [Path(str(resources.files("digest.templates")))]
        if self.override_dir and self.override_dir.is_dir():
            folders.append(self.override_dir)
        return tuple(p.stat().st_mtime for f in folders for p in sorted(f.glob("*.*")))

    def _check_syntax(self, text: str, name: str, filename: str) -> None:
        try:
            self.html_env.parse(text, name, filename)
        except jinja2.TemplateSyntaxError as exc:
            raise DigestError(f"{filename}, line {exc.lineno}: {exc.message}") from None

    def _include(self, path: str) -> str:
        text, filename = self.source(path)
        self._check_syntax(text, path, filename)
        return text

    def _load_html(self, name: str) -> tuple[str, str, Any]:
        text, filename = self.source(name)
        self._check_syntax(text, name, filename)
        try:
            html = mjml.mjml2html(text, include_loader=self._include, fonts={})
        except DigestError:
            raise
        except Exception as exc:  # mjml-python raises ValueError/RuntimeError without a line
            raise DigestError(f"{filename}: not valid MJML: {exc}") from None
        self._sources[name] = text
        return _finish_head(html), filename, lambda: True

    def _load_text(self, name: str) -> tuple[str, str, Any]:
        text, filename = self.source(name)
        return text, filename, lambda: True

    def render(self, kind: str, name: str, context: dict[str, Any]) -> str:
        """Render ``name`` (kind "html" or "text"); any template error names file and line."""
        env = self.html_env if kind == "html" else self.text_env
        try:
            return env.get_template(name).render(context)
        except DigestError:
            raise
        except jinja2.TemplateSyntaxError as exc:  # also unknown filters, found at compile time
            filename = exc.filename or name
            raise DigestError(
                f"{filename}{self._where(name, kind, exc.lineno)}: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            tb: TracebackType | None = exc.__traceback__
            filename, lineno = name, None
            while tb is not None:  # the innermost template frame
                if tb.tb_frame.f_code.co_filename.endswith((".mjml", ".txt")):
                    filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
                tb = tb.tb_next
            raise DigestError(f"{filename}{self._where(name, kind, lineno)}: {exc}") from None

    def _where(self, name: str, kind: str, lineno: int | None) -> str:
        """``, line N`` in the template source (compiled MJML lines mapped back to the .mjml)."""
        if lineno is None:
            return ""
        if kind == "html" and name in self._sources:
            compiled = self.html_env.loader.get_source(self.html_env, name)[0].split("\n")
            source_lines = self._sources[name].split("\n")
            tags = _JINJA_TAG.findall(compiled[lineno - 1]) if lineno <= len(compiled) else []
            lineno = next(
                (i for tag in tags for i, line in enumerate(source_lines, 1) if tag in line),
                lineno,
            )
        return f", line {lineno}"


def _finish_head(html: str) -> str:
    """Use the short HTML5 charset declaration MJML leaves out."""
    old = '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
    if old in html:
        return html.replace(old, '<meta charset="utf-8">', 1)
    return html.replace("<head>", '<head><meta charset="utf-8">', 1)


# --- the renderer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Brand:
    """Branding shown in every email and page."""

    name: str
    accent: str
    logo_url: str | None
    contact: str
    base_url: str


def _long_date(day: date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


class PreparedMessage:
    """A digest rendered once for one Selection; finished cheaply per subscriber."""

    def __init__(self, renderer: Renderer, spliced: SplicedMessage, edition: Edition) -> None:
        self._renderer = renderer
        self.spliced = spliced
        self.edition = edition
        self.subject = spliced.subject

    def for_subscriber(self, subscriber: Subscriber) -> Message:
        """The finished email for ``subscriber``: recipient, signed links, headers, bytes."""
        unsubscribe, preferences = self._renderer.links(subscriber)
        raw, text, html, headers = self.spliced.build(
            subscriber.email,
            {UNSUBSCRIBE_SLOT: unsubscribe, PREFERENCES_SLOT: preferences},
            {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        return Message(
            sender=self.spliced.sender,
            recipient=subscriber.email,
            subject=self.subject,
            text=text,
            html=html,
            headers=headers,
            raw=raw,
        )


class Renderer:
    """Renders digests, confirmation and welcome emails, and the archive page of an edition."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.templates = TemplateSet(settings.templates_dir)
        self.base_url = str(settings.base_url).rstrip("/")
        self._signer = Signer(settings.secret_key) if settings.secret_key else None
        self.brand = Brand(
            name=settings.name,
            accent=settings.accent_color,
            logo_url=safe_url(settings.logo_url),
            contact=settings.contact,
            base_url=self.base_url,
        )
        self._list_host = urlsplit(self.base_url).hostname or "localhost"
        check_header("DIGEST_NAME", settings.name)

    # -- links --

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            raise DigestError("DIGEST_SECRET_KEY is not set; it signs the links in emails")
        return self._signer

    def _id(self, subscriber: Subscriber) -> int:
        if subscriber.id is None:
            raise DigestError("subscriber has no id yet; store it before rendering its email")
        return subscriber.id

    def links(self, subscriber: Subscriber) -> tuple[str, str]:
        """The subscriber's ``(unsubscribe, preferences)`` URLs, each with a signed token."""
        sid = self._id(subscriber)
        return (
            f"{self.base_url}/unsubscribe/{self.signer.make(Purpose.UNSUBSCRIBE, sid)}",
            f"{self.base_url}/preferences/{self.signer.make(Purpose.PREFERENCES, sid)}",
        )

    def archive_url(self, edition: Edition) -> str:
        """Where the edition's web page lives."""
        return f"{self.base_url}/archive/{edition.key}"

    # -- digests --

    def digest_context(
        self, edition: Edition, selection: Selection, *, web: bool = False
    ) -> dict[str, Any]:
        """Everything digest.mjml and digest.txt see."""
        themes = [
            {"label": clean(t.label) or "Papers", "papers": [PaperView.of(p) for p in t.papers]}
            for t in selection.themes
            if t.papers
        ]
        count = sum(len(t["papers"]) for t in themes)
        when = _long_date(edition.date)
        if edition.frequency == Frequency.WEEKLY:
            when = f"Week of {edition.date.day} {edition.date:%B %Y}"
        papers = _plural(count, "paper")
        heading = f"{when} · {papers} in {_plural(len(themes), 'theme')}"
        titles = [p.title for t in themes for p in t["papers"]][:3]
        preheader = shorten("Top papers: " + "; ".join(titles), 140) if titles else heading
        archive = self.archive_url(edition)
        if web:
            reason = f"The {edition.frequency} edition of {self.brand.name}. Subscribe at {self.base_url}"
        else:
            reason = (
                f"You receive this email because you subscribed to the {edition.frequency} "
                f"edition of {self.brand.name}."
            )
        return {
            "brand": self.brand,
            "title": f"{self.brand.name}: {when}",
            "heading": heading,
            "preheader": preheader,
            "themes": themes,
            "count": count,
            "omitted": selection.omitted,
            "archive_url": archive,
            "browser_url": None if web else archive,
            "footer_reason": reason,
            "unsubscribe_url": None if web else UNSUBSCRIBE_SLOT,
            "preferences_url": None if web else PREFERENCES_SLOT,
        }

    def subject(self, edition: Edition, count: int) -> str:
        """The digest's subject line: name, paper count and date."""
        day = f"{edition.date.day} {edition.date:%b %Y}"
        if edition.frequency == Frequency.WEEKLY:
            day = f"week of {day}"
        return f"{self.brand.name}: {_plural(count, 'trending paper')}, {day}"

    def _spliced(
        self, subject: str, text: str, html: str, slots: tuple[str, ...]
    ) -> SplicedMessage:
        return SplicedMessage(
            sender=self.settings.sender,
            subject=subject,
            text=text,
            html=html,
            placeholders=slots,
            reply_to=self.settings.reply_to,
            headers={"List-Id": f"{_list_phrase(self.brand.name)}<digest.{self._list_host}>"},
        )

    def prepare_digest(
        self, edition: Edition, selection: Selection, *, subject_prefix: str = ""
    ) -> PreparedMessage:
        """Render ``selection`` of ``edition`` once (HTML + text), ready for any subscriber."""
        context = self.digest_context(edition, selection)
        html = self.templates.render("html", "digest.mjml", context)
        text = _tidy_text(self.templates.render("text", "digest.txt", context))
        subject = subject_prefix + self.subject(edition, context["count"])
        return PreparedMessage(self, self._spliced(subject, text, html, SLOTS), edition)

    def edition_page(self, edition: Edition, selection: Selection | None = None) -> str:
        """The edition as a web page ("view in browser", ``/archive/{key}``), without tokens."""
        selection = selection or full_selection(edition)
        return self.templates.render(
            "html", "digest.mjml", self.digest_context(edition, selection, web=True)
        )

    # -- confirmation and welcome --

    def _simple(
        self,
        name: str,
        subscriber: Subscriber,
        subject: str,
        context: dict[str, Any],
        *,
        listed: bool,
    ) -> Message:
        context = {
            "brand": self.brand,
            "title": subject,
            "preheader": context["paragraphs"][0],
            "browser_url": None,
            "unsubscribe_url": None,
            "preferences_url": None,
            **context,
        }
        html = self.templates.render("html", f"{name}.mjml", context)
        text = _tidy_text(self.templates.render("text", f"{name}.txt", context))
        headers = {}
        if listed:
            unsubscribe = context["unsubscribe_url"]
            headers = {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        spliced = self._spliced(subject, text, html, ())
        raw, text, html, all_headers = spliced.build(subscriber.email, {}, headers)
        return Message(
            sender=self.settings.sender,
            recipient=subscriber.email,
            subject=subject,
            text=text,
            html=html,
            headers=all_headers,
            raw=raw,
        )

    def confirmation(self, subscriber: Subscriber, nonce: int) -> Message:
        """The double opt-in email: one link confirming the subscription (single use by nonce)."""
        token = self.signer.make(Purpose.CONFIRM, self._id(subscriber), nonce)
        name = self.brand.name
        context = {
            "heading": "Please confirm your subscription",
            "paragraphs": [
                f"Someone, hopefully you, asked to receive {name}: trending research papers, "
                "grouped by theme, in your inbox.",
                "Confirm with the link below. If it was not you, ignore this email and "
                "nothing more will be sent. The link works for 48 hours.",
            ],
            "action_url": f"{self.base_url}/confirm/{token}",
            "action_label": "Confirm my subscription",
            "footer_reason": f"You receive this email because this address was entered on {self.base_url}.",
        }
        return self._simple(
            "confirm", subscriber, f"Confirm your subscription to {name}", context, listed=False
        )

    def welcome(self, subscriber: Subscriber) -> Message:
        """The email sent once a subscription is confirmed."""
        unsubscribe, preferences = self.links(subscriber)
        name = self.brand.name
        context = {
            "heading": f"Welcome to {name}",
            "paragraphs": [
                "Your subscription is confirmed. The next edition arrives with the next "
                "scheduled run.",
                "Choose your topics, keywords and how many papers you get on your preferences page.",
            ],
            "action_url": preferences,
            "action_label": "Choose your topics",
            "footer_reason": f"You receive this email because you subscribed to {name}.",
            "unsubscribe_url": unsubscribe,
            "preferences_url": preferences,
        }
        return self._simple("welcome", subscriber, f"Welcome to {name}", context, listed=True)


def _list_phrase(name: str) -> str:
    """The optional display phrase of List-Id: kept only when it is plain ASCII."""
    if name.isascii() and re.fullmatch(r"[\w .-]+", name):
        return f"{name} "
    return ""


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines in the text part and strip trailing spaces."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
