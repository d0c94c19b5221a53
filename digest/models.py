"""The plain values that flow between the stages of digest. No I/O here."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

__all__ = [
    "ARXIV_ID",
    "REMAINDER_LABEL",
    "Delivery",
    "DeliveryStatus",
    "Edition",
    "EditionStatus",
    "FailureKind",
    "Frequency",
    "Message",
    "Paper",
    "SelectedPaper",
    "SelectedTheme",
    "Selection",
    "Subscriber",
    "SubscriberStatus",
    "Theme",
    "normalize_arxiv_id",
]

# The label of the theme that holds papers fitting no other theme; always shown last.
REMAINDER_LABEL = "Other papers"

# New-style (2007+) ids with an optional version, and old-style ids such as hep-th/9901001v2.
_ARXIV_PREFIX = re.compile(r"^(?:https?://(?:www\.)?arxiv\.org/(?:abs|pdf)/|arxiv:)", re.I)
ARXIV_ID = re.compile(r"^(?:(\d{4}\.\d{4,5})|([a-z\-]+(?:\.[A-Z]{2})?/\d{7}))(?:v\d+)?$")


def normalize_arxiv_id(raw: str) -> str:
    """Return the version-less arXiv id for ``raw`` (``2410.17243v2`` -> ``2410.17243``).

    Accepts a bare id, an ``arXiv:`` prefix, or an abs/pdf URL; raises ValueError otherwise.
    """
    text = raw.strip()
    text = _ARXIV_PREFIX.sub("", text, count=1)
    text = text.removesuffix(".pdf")
    match = ARXIV_ID.match(text)
    if not match:
        raise ValueError(f"not an arXiv id: {raw!r}")
    return match.group(1) or match.group(2)


class Frequency(enum.StrEnum):
    """How often a subscriber wants an edition."""

    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands; only ACTIVE subscribers get editions."""

    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class EditionStatus(enum.StrEnum):
    """Life of an edition: built, released by an admin (when approval is required), sent.

    draft -> [approved] -> sending -> sent. With DIGEST_APPROVAL=required a draft is never sent.
    """

    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"


class DeliveryStatus(enum.StrEnum):
    """States of one (edition, subscriber) row in the delivery ledger.

    queued -> sending -> sent | deferred | failed | unknown. ``sending`` is committed before
    the SMTP DATA command, so a crash leaves evidence instead of a silent duplicate.
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class FailureKind(enum.StrEnum):
    """Why a ledger row failed, kept beside it so grouping and retrying never parse free text.

    Only ``mailbox`` (5.1.x: the address does not exist) is never retried: every other cause
    may be fixed on our side or the relay's (a setting, a template, a policy, a size limit).
    """

    MAILBOX = "mailbox"  # 5.1.x: a hard bounce; the subscriber is marked bounced
    POLICY = "policy"  # 5.7.x: relay refused, sender not authorised, SPF/DMARC, spam
    SIZE = "size"  # 552, 5.2.2, 5.2.3, 5.3.4: mailbox full or message too big
    TEMPORARY = "temporary"  # 4xx until DIGEST_SMTP_MAX_ATTEMPTS ran out
    REJECTED = "rejected"  # any other 5xx
    RENDER = "render"  # the email could not be built (a template, DIGEST_FROM, ...)

    @property
    def retryable(self) -> bool:
        """True when `digest send --retry-failed` may queue such a row again."""
        return self is not FailureKind.MAILBOX

    @property
    def label(self) -> str:
        """The cause in a few words, for `digest status`."""
        return _FAILURE_LABELS[self]


_FAILURE_LABELS = MappingProxyType(
    {
        FailureKind.MAILBOX: "no such mailbox (never retried)",
        FailureKind.POLICY: "refused by policy",
        FailureKind.SIZE: "message too big or mailbox full",
        FailureKind.TEMPORARY: "temporary failure until the attempts ran out",
        FailureKind.REJECTED: "rejected",
        FailureKind.RENDER: "the email could not be built",
    }
)


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, identified by its version-less arXiv id."""

    arxiv_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None  # the arXiv submission date
    listed_at: datetime | None = None  # when a listing (HF daily, arXiv new) showed it
    upvotes: int = 0
    comments: int = 0
    ai_summary: str | None = None
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # arXiv categories, primary first
    github_url: str | None = None
    github_stars: int | None = None
    project_url: str | None = None
    organization: str | None = None
    thumbnail_url: str | None = None
    sources: tuple[str, ...] = ()
    first_seen_at: datetime | None = None  # set by the store on first insert
    version: int | None = None  # the latest arXiv version known (the arXiv API says)

    @property
    def url(self) -> str:
        """The paper's page on Hugging Face when it came from there, else on arXiv."""
        if "hf" in self.sources:
            return f"https://huggingface.co/papers/{self.arxiv_id}"
        return self.abs_url

    @property
    def abs_url(self) -> str:
        """The arXiv abstract page."""
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        """The arXiv PDF."""
        return f"https://arxiv.org/pdf/{self.arxiv_id}"


@dataclass(frozen=True, slots=True)
class Theme:
    """A group of papers of one theme, with a short human-readable label."""

    label: str
    papers: tuple[Paper, ...]


@dataclass(frozen=True, slots=True)
class SelectedPaper:
    """A paper picked for one subscriber, with its trending score and why it was picked."""

    paper: Paper
    score: float = 0.0
    why: str = ""


@dataclass(frozen=True, slots=True)
class SelectedTheme:
    """A theme as one subscriber sees it: only their papers, each with its "why"."""

    label: str
    papers: tuple[SelectedPaper, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    """What one subscriber gets of an edition; ``omitted`` papers are past their limit."""

    themes: tuple[SelectedTheme, ...]
    omitted: int = 0

    @property
    def count(self) -> int:
        """How many papers the email shows."""
        return sum(len(t.papers) for t in self.themes)


@dataclass(frozen=True, slots=True)
class Edition:
    """One issue of the digest: the papers of a day (or week), grouped into themes.

    ``key`` is unique per schedule and period, e.g. ``daily-2026-11-26`` or ``weekly-2026-W48``.
    """

    key: str
    frequency: Frequency
    date: date
    themes: tuple[Theme, ...]
    id: int | None = None
    status: EditionStatus = EditionStatus.DRAFT
    created_at: datetime | None = None
    approved_at: datetime | None = None

    @property
    def papers(self) -> tuple[Paper, ...]:
        """Every paper of the edition, theme by theme."""
        return tuple(p for t in self.themes for p in t.papers)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person on the list and what they want to receive."""

    email: str
    id: int | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    topics: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    frequency: Frequency = Frequency.DAILY
    max_papers: int | None = None  # None: the site-wide default
    min_score: float | None = None
    created_at: datetime | None = None
    confirmed_at: datetime | None = None
    # The reader's own profile (issues 14 and 16). Stored by the store; read by selection.
    likes: tuple[str, ...] = ()  # arXiv ids the subscriber liked ("more like this")
    dislikes: tuple[str, ...] = ()  # arXiv ids they disliked ("less like this")
    blend: float | None = None  # 0 trending .. 1 "for me"; None: the default for their likes
    follow_authors: tuple[str, ...] = ()  # names as the reader typed them
    follow_orgs: tuple[str, ...] = ()
    timezone: str | None = None  # IANA name; None: DIGEST_TIMEZONE
    send_hour: int | None = None  # 0-23 local; None: the hour of DIGEST_SCHEDULE
    empty_days: str = "skip"  # "skip" a day with nothing new, or "roll" it into the next email
    followups: bool = True  # the "Since you last saw it" section


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered email, ready for a transport."""

    sender: str
    recipient: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""  # the full RFC 5322 bytes, built by digest.mail.mime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the delivery ledger: an edition for a subscriber, and how it went."""

    edition_id: int
    subscriber_id: int
    status: DeliveryStatus = DeliveryStatus.QUEUED
    attempts: int = 0
    last_error: str | None = None
    message_id: str | None = None
    id: int | None = None
    updated_at: datetime | None = None
    failure: FailureKind | None = None  # why a failed row failed
    failure_code: str | None = None  # the SMTP reply code, e.g. "550 5.7.1"
