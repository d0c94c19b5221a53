"""The database schema as SQLAlchemy Core tables.

Migrations in ``digest/store/migrations`` create and upgrade it; a test checks that the migrated
database matches these tables exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = ["SEARCH_INDEX", "SEARCH_TABLE", "SEARCH_VECTOR", "UtcDateTime", "declared", "metadata"]


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# One row per paper, whatever the source; arxiv_id is the version-less id.
papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("arxiv_id", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", JSON, nullable=False, default=list),
    Column("published_at", UtcDateTime),
    Column("listed_at", UtcDateTime),
    Column("upvotes", Integer, nullable=False, default=0),
    Column("comments", Integer, nullable=False, default=0),
    Column("ai_summary", Text),
    Column("keywords", JSON, nullable=False, default=list),
    Column("categories", JSON, nullable=False, default=list),
    Column("github_url", Text),
    Column("github_stars", Integer),
    Column("project_url", Text),
    Column("organization", Text),
    Column("thumbnail_url", Text),
    Column("sources", JSON, nullable=False, default=list),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The words the archive search finds the paper by (digest.store.search), kept by the store.
    Column("search_text", Text, nullable=False, server_default=""),
    Column("version", Integer),  # the latest arXiv version known (revision 0006)
)
Index("ix_papers_first_seen_at", papers.c.first_seen_at)

# The full-text index over papers.search_text lives outside these tables, per database
# (migration 0002_archive_search): on SQLite the FTS5 table SEARCH_TABLE, kept in step by
# triggers on papers; on PostgreSQL the GIN index SEARCH_INDEX on SEARCH_VECTOR (revision 0008),
# the tsvector of search_text's words as they are. A query must use SEARCH_VECTOR as written
# for PostgreSQL to use the index. A later revision that rebuilds `papers` on SQLite (batch
# mode) must recreate the triggers.
SEARCH_TABLE = "papers_search"
SEARCH_INDEX = "ix_papers_search"
SEARCH_VECTOR = "array_to_tsvector(array_remove(string_to_array(search_text, ' '), ''))"


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name hook: False for the search index's own tables and index."""
    return not (name and (name.startswith(SEARCH_TABLE) or name == SEARCH_INDEX))


# An edition per schedule and period; key is e.g. "daily-2026-11-26".
editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("frequency", String(16), nullable=False),
    Column("date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("approved_at", UtcDateTime),  # when `digest approve` released it
)

# Which papers an edition holds, in which theme and order. A paper appears in at most one
# edition of a frequency (the "never a paper twice" rule is checked against this table).
edition_papers = Table(
    "edition_papers",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("theme", Text, nullable=False),
    Column("theme_position", Integer, nullable=False),
    Column("position", Integer, nullable=False),
)
Index("ix_edition_papers_paper_id", edition_papers.c.paper_id)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("status", String(16), nullable=False),
    Column("topics", JSON, nullable=False, default=list),
    Column("keywords", JSON, nullable=False, default=list),
    Column("frequency", String(16), nullable=False, default="daily"),
    Column("max_papers", Integer),
    Column("min_score", Float),
    Column("created_at", UtcDateTime, nullable=False),
    Column("confirmed_at", UtcDateTime),
    Column("unsubscribed_at", UtcDateTime),
    # Bumped when a confirmation is used or a new one is sent: makes confirm tokens single-use.
    Column("confirm_nonce", Integer, nullable=False, default=0),
    # The reader's own profile (revision 0005): "Trending" (0) to "For me" (1), whom they follow,
    # their own hour, and what an empty day does.
    Column("blend", Float),
    Column("follow_authors", JSON, nullable=False, default=list),
    Column("follow_orgs", JSON, nullable=False, default=list),
    Column("timezone", String(64)),
    Column("send_hour", Integer),
    Column("empty_days", String(8), nullable=False, default="skip"),
    Column("followups", Boolean, nullable=False, default=True),
)
Index("ix_subscribers_status", subscribers.c.status)

# Papers a reader liked (seeded from their library) that no listing brought: their text lets
# "for me" use the like; they are not `papers`, so no edition ever lists them as new.
reference_papers = Table(
    "reference_papers",
    metadata,
    Column("arxiv_id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", JSON, nullable=False, default=list),
    Column("categories", JSON, nullable=False, default=list),
    Column("fetched_at", UtcDateTime, nullable=False),
)

# A subscriber's likes (+1) and dislikes (-1), by arXiv id: the paper may not be stored (yet).
# Per subscriber only; deleted with them.
ratings = Table(
    "ratings",
    metadata,
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("arxiv_id", String(64), primary_key=True),
    Column("value", SmallInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# What emails showed (revision 0006), for "since you last saw it". Per edition, each paper's
# signals as its emails showed them (written once, at its send); per subscriber and edition,
# the arXiv ids the email held and those it told again (``told``: never told a second time).
# Kept for the follow-up window (30 days), then deleted as new rows come.
shown_snapshots = Table(
    "shown_snapshots",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("arxiv_id", String(64), primary_key=True),
    Column("taken_at", UtcDateTime, nullable=False),
    Column("upvotes", Integer, nullable=False),
    Column("github_stars", Integer),
    Column("github_url", Text),
    Column("project_url", Text),
    Column("version", Integer),
)
Index("ix_shown_snapshots_taken_at", shown_snapshots.c.taken_at)

shown_emails = Table(
    "shown_emails",
    metadata,
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("shown_at", UtcDateTime, nullable=False),
    Column("papers", JSON, nullable=False, default=list),
    Column("told", JSON, nullable=False, default=list),
)
Index("ix_shown_emails_shown_at", shown_emails.c.shown_at)

# Deleted or hard-bounced addresses, kept only as a salted hash so they stay suppressed.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(128), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The delivery ledger: exactly one row per (edition, subscriber).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("message_id", String(255)),
    Column("next_attempt_at", UtcDateTime),
    Column("claimed_by", String(128)),  # the holder (new_holder) of the run that has the row
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    # Why a failed row failed (a FailureKind) and the SMTP reply code ("550 5.7.1"), so that
    # `digest status` groups failures and `send --retry-failed` decides without parsing text.
    Column("failure", String(16)),
    Column("failure_code", String(16)),
    UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
)
Index("ix_deliveries_edition_status", deliveries.c.edition_id, deliveries.c.status)

# One row per `digest run` / scheduled job / send, for `digest status`.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("edition_key", String(64)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("outcome", String(16), nullable=False),  # running, ok, nothing, failed, paused, crashed
    Column("detail", Text),
    Column("holder", String(128)),  # new_holder() of the process; tells a crashed run at once
)

# Lease rows: a named lock held by one process until it expires (SQLite's stand-in for a
# PostgreSQL advisory lock, used by the scheduler and by send).
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# Small key/value facts the store keeps, e.g. the demo's generated secret key.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
