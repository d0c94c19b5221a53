"""Emails and the "view in browser" page: what each template is given, and the finished Message.

Templates are loaded and compiled once by digest.mail.templates. A digest is rendered once per
distinct Selection with placeholder links; :meth:`PreparedMessage.for_subscriber` splices each
subscriber's signed links and headers into the pre-encoded bytes (see digest.mail.mime).

The placeholders carry a random nonce drawn for each render (``mime.Slots``), so only the
template's own link positions hold them: a paper or subscriber field that spells a placeholder
cannot know the nonce, and so never receives a subscriber's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from digest.config import Settings
from digest.errors import DigestError
from digest.mail.mime import Slots, SplicedMessage, check_header
from digest.mail.templates import TemplateSet
from digest.mail.text import (
    clean,
    format_authors,
    list_phrase,
    long_date,
    plural,
    safe_url,
    shorten,
    summarize,
    tidy_text,
)
from digest.mail.text import thumbnail as thumbnail_of
from digest.models import (
    Edition,
    Frequency,
    Message,
    SelectedPaper,
    Selection,
    Subscriber,
)
from digest.themes.rank import signals as rank_signals
from digest.tokens import Purpose, Signer

__all__ = [
    "Brand",
    "PaperView",
    "PreparedMessage",
    "Renderer",
]

TITLE_CHARS = 300


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
    thumbnail: str | None = None
    more_url: str = ""  # "More like this" (issue 14): a slot filled per subscriber
    less_url: str = ""

    @classmethod
    def of(
        cls, selected: SelectedPaper, *, thumbnail: bool = False, feedback: str = ""
    ) -> PaperView:
        """Shape a selected paper for display (escaping is the template's job).

        ``thumbnail``: show the source's thumbnail of the paper, if it has one on a known host.
        ``feedback``: the URL of the paper's feedback page, without ``?choice=``.
        """
        paper = selected.paper
        byline = format_authors(paper.authors)
        if paper.organization and clean(paper.organization):
            byline = (
                f"{byline} · {clean(paper.organization)}" if byline else clean(paper.organization)
            )
        # rank's "why" line starts with these same signals: show each one once.
        shown = tuple(s for s in rank_signals(paper) if s not in selected.why)
        links = [("arXiv", paper.abs_url)] if paper.url != paper.abs_url else []
        links.append(("PDF", paper.pdf_url))
        for label, url in (("Code", paper.github_url), ("Project", paper.project_url)):
            if safe_url(url):
                links.append((label, safe_url(url)))
        return cls(
            title=shorten(clean(paper.title[: TITLE_CHARS * 4]), TITLE_CHARS) or paper.arxiv_id,
            url=paper.url,
            byline=byline,
            signals=shown,
            summary=summarize(paper),
            links=tuple(links),
            why=shorten(clean(selected.why), 200),
            thumbnail=thumbnail_of(paper.thumbnail_url) if thumbnail else None,
            more_url=f"{feedback}?choice=more" if feedback else "",
            less_url=f"{feedback}?choice=less" if feedback else "",
        )


# --- the renderer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Brand:
    """Branding shown in every email and page."""

    name: str
    accent: str
    logo_url: str | None
    contact: str
    base_url: str


class PreparedMessage:
    """A digest rendered once for one Selection; finished cheaply per subscriber."""

    def __init__(
        self,
        renderer: Renderer,
        spliced: SplicedMessage,
        edition: Edition,
        slots: Slots,
        papers: tuple[str, ...] = (),
    ) -> None:
        self._renderer = renderer
        self._slots = slots
        self._papers = papers  # arXiv ids in the order of their feedback slots
        self.spliced = spliced
        self.edition = edition
        self.subject = spliced.subject

    def for_subscriber(self, subscriber: Subscriber) -> Message:
        """The finished email for ``subscriber``: recipient, signed links, headers, bytes."""
        unsubscribe, preferences = self._renderer.links(subscriber)
        values = self._slots.values(unsubscribe, preferences)
        sid, sign = self._renderer._id(subscriber), self._renderer.signer.make_feedback
        for i, arxiv_id in enumerate(self._papers):
            values[self._slots.feedback(i)] = sign(sid, arxiv_id)
        raw, text, html, headers = self.spliced.build(
            subscriber.email,
            values,
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
    """Renders digests, confirmation and welcome emails."""

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
        """The link signer; a clear error when DIGEST_SECRET_KEY is unset (links need it)."""
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

    def feedback_url(self, token: str) -> str:
        """The page of one paper's "More / Less like this" (``?choice=`` added by the caller)."""
        return f"{self.base_url}/feedback/{token}"

    def archive_url(self, edition: Edition) -> str:
        """Where the edition's web page lives."""
        return f"{self.base_url}/archive/{edition.key}"

    # -- digests --

    def digest_context(
        self, edition: Edition, selection: Selection, slots: Slots, extra: Any = None
    ) -> dict[str, Any]:
        """Everything digest.mjml and digest.txt see; the links are the render's own ``slots``.

        ``extra``: what the templates' ``extra`` block shows of this subscriber (None: nothing).
        """
        show = self.settings.thumbnails  # the lead paper of each theme, where the source has one
        themes, n = [], 0
        for t in selection.themes:
            if not t.papers:
                continue
            views = []
            for i, p in enumerate(t.papers):
                feedback = self.feedback_url(slots.feedback(n))
                views.append(PaperView.of(p, thumbnail=show and i == 0, feedback=feedback))
                n += 1
            themes.append({"label": clean(t.label) or "Papers", "papers": views})
        count = sum(len(t["papers"]) for t in themes)
        heading = self.heading(edition, count, len(themes))
        titles = [p.title for t in themes for p in t["papers"]][:3]
        preheader = shorten("Top papers: " + "; ".join(titles), 140) if titles else heading
        return {
            **self.edition_context(edition),
            "heading": heading,
            "preheader": preheader,
            "themes": themes,
            "count": count,
            "omitted": selection.omitted,
            "extra": extra,
            "unsubscribe_url": slots.unsubscribe,
            "preferences_url": slots.preferences,
        }

    def edition_context(self, edition: Edition) -> dict[str, Any]:
        """What digest.mjml and digest.txt see that is the same in every email of ``edition``."""
        archive = self.archive_url(edition)
        return {
            "brand": self.brand,
            "title": f"{self.brand.name}: {self.when(edition)}",
            "archive_url": archive,
            "browser_url": archive,
            "footer_reason": (
                f"You receive this email because you subscribed to the {edition.frequency} "
                f"edition of {self.brand.name}."
            ),
        }

    def when(self, edition: Edition) -> str:
        """The edition's date as its emails say it."""
        if edition.frequency == Frequency.WEEKLY:
            return f"Week of {edition.date.day} {edition.date:%B %Y}"
        return long_date(edition.date)

    def heading(self, edition: Edition, papers: int, themes: int) -> str:
        """The line under the name: date, papers and themes."""
        return f"{self.when(edition)} · {plural(papers, 'paper')} in {plural(themes, 'theme')}"

    def subject(self, edition: Edition, count: int) -> str:
        """The digest's subject line: name, paper count and date."""
        day = f"{edition.date.day} {edition.date:%b %Y}"
        if edition.frequency == Frequency.WEEKLY:
            day = f"week of {day}"
        return f"{self.brand.name}: {plural(count, 'trending paper')}, {day}"

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
            headers={"List-Id": f"{list_phrase(self.brand.name)}<digest.{self._list_host}>"},
        )

    def prepare_digest(
        self, edition: Edition, selection: Selection, *, subject_prefix: str = "", extra: Any = None
    ) -> PreparedMessage:
        """Render ``selection`` of ``edition`` once (HTML + text), ready for any subscriber.

        ``extra``: what the templates' ``extra`` block shows (a reader's own section).
        """
        slots = Slots.new()
        context = self.digest_context(edition, selection, slots, extra)
        html = self.templates.render("html", "digest.mjml", context)
        text = tidy_text(self.templates.render("text", "digest.txt", context))
        subject = subject_prefix + self.subject(edition, context["count"])
        papers = tuple(p.paper.arxiv_id for t in selection.themes for p in t.papers)
        keys = (slots.unsubscribe, slots.preferences, *map(slots.feedback, range(len(papers))))
        spliced = self._spliced(subject, text, html, keys)
        return PreparedMessage(self, spliced, edition, slots, papers)

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
        text = tidy_text(self.templates.render("text", f"{name}.txt", context))
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

    def notice(self, recipient: str, subject: str, paragraphs: list[str]) -> Message:
        """A plain message to one address off the list (the test email of `digest check`)."""
        context = {
            "heading": subject,
            "paragraphs": paragraphs,
            "action_url": None,
            "action_label": "",
            "footer_reason": f"You receive this email because an admin of {self.brand.name} "
            "asked for a test.",
        }
        stranger = Subscriber(email=recipient, id=0)  # id 0: no link is made for it
        return self._simple("confirm", stranger, subject, context, listed=False)
