"""Papers: one row per paper, merged across sources."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Frequency, Paper
from digest.store import schema
from digest.store.base import IN_CHUNK, StoreBase, in_chunks, utcnow
from digest.store.search import paper_search_text

__all__ = ["PaperStore", "UpsertResult", "row_to_paper"]

# Fields a later source may fill in or refresh; identity and first_seen_at never change.
_MERGED_FIELDS = (
    "title", "abstract", "authors", "published_at", "upvotes", "comments", "ai_summary",
    "keywords", "categories", "github_url", "github_stars", "project_url", "organization",
    "thumbnail_url", "version",
)  # fmt: skip
_TUPLE_FIELDS = ("authors", "keywords", "categories", "sources")
_PAPER_FIELDS = tuple(f.name for f in dataclasses.fields(Paper))
# A changed row is rewritten whole (bar identity): one UPDATE shape serves every row, so
# all of them go in one executemany; unchanged columns are written with the value they have.
# search_text (what the archive search reads) is derived from the merged paper each time.
_WRITTEN_ON_MERGE = (*_MERGED_FIELDS, "listed_at", "sources")
# What a merge reads of a stored paper: not the clock columns, nor search_text (as long as
# the abstract), which a merge derives again.
_READ_FOR_MERGE = ("arxiv_id", *_WRITTEN_ON_MERGE)


@dataclass
class UpsertResult:
    """What storing a batch of papers did: how many were new, merged (changed) or unchanged."""

    new: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def row_to_paper(row: sa.RowMapping, fields: Sequence[str] = _PAPER_FIELDS) -> Paper:
    """The Paper of a ``papers`` row (extra columns of a join are ignored).

    ``fields``: the Paper fields the row holds (those left out keep their defaults).
    """
    values = {name: row[name] for name in fields}
    for name in _TUPLE_FIELDS:
        if name in values:
            values[name] = tuple(values[name] or ())
    return Paper(**values)


# A new row's columns, in the order _Encoder.row gives its values (id is the database's).
_INSERT_COLUMNS = (*_PAPER_FIELDS, "updated_at", "search_text")
_TIME_FIELDS = ("published_at", "listed_at", "first_seen_at", "updated_at")
# SQLite allows 32,766 bound parameters: 1,000 rows of 23 columns a statement.
_INSERT_ROWS = 1_000


class _Encoder:
    """New rows as the driver takes them, bypassing SQLAlchemy's per-value type processing
    (a third of a 10,000-paper insert): the very text its JSON and UtcDateTime types bind.

    JSON lists are ``json.dumps`` of the list (SQLAlchemy's default serializer), each distinct
    list encoded once (a batch repeats a few category and source lists thousands of times).
    Times are aware datetimes in UTC; on SQLite the text SQLAlchemy's DATETIME stores.
    """

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.lists: dict[tuple[str, ...], str] = {}
        # The clock's time is in every row and a listing's few days in thousands.
        self.times: dict[datetime, datetime | str] = {}
        self.list_at = [i for i, name in enumerate(_INSERT_COLUMNS) if name in _TUPLE_FIELDS]
        self.time_at = [i for i, name in enumerate(_INSERT_COLUMNS) if name in _TIME_FIELDS]

    def row(self, paper: Paper, now: datetime) -> tuple:
        """The values of ``paper``'s new row, in _INSERT_COLUMNS order."""
        values = [getattr(paper, name) for name in _PAPER_FIELDS]
        values += (now, paper_search_text(paper))
        values[_PAPER_FIELDS.index("first_seen_at")] = now
        for i in self.list_at:
            text = self.lists.get(values[i])
            if text is None:
                text = self.lists[values[i]] = json.dumps(list(values[i]))
            values[i] = text
        for i in self.time_at:
            if values[i] is not None:
                time = self.times.get(values[i])
                if time is None:
                    time = self.times[values[i]] = self.time(values[i])
                values[i] = time
        return tuple(values)

    def time(self, value: datetime) -> datetime | str:
        """An aware datetime as the UtcDateTime column binds it (``row`` keeps each one's)."""
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if not self.sqlite:
            return value
        # SQLAlchemy's SQLite DATETIME: "2026-01-16 00:00:00.000000", no zone.
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _insert_new(conn: Connection, papers: Iterable[Paper], now: datetime) -> int:
    """INSERT new rows through the driver; returns how many.

    On SQLite multi-row INSERTs of up to _INSERT_ROWS: the search index's trigger makes each
    statement a savepoint, where FTS5 writes out the words it holds (row by row, 10,000
    papers cost 1.8 s CPU, in chunks 1.1 s). On PostgreSQL one COPY, fed row by row as each
    is encoded: 10,000 papers 1.25 s, against 2.0 s for a pipelined executemany of rows
    encoded first (COPY's lighter protocol, and the server's indexing overlaps the encoding).
    """
    encode = _Encoder(conn.dialect.name)
    if not encode.sqlite:
        count = 0
        copy = f"COPY papers ({', '.join(_INSERT_COLUMNS)}) FROM STDIN"
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(copy) as rows:
            for paper in papers:  # encoded as they go: the server indexes while Python encodes
                rows.write_row(encode.row(paper, now))
                count += 1
        return count
    rows = [encode.row(p, now) for p in papers]
    # Only the fixed column names and placeholders are formatted in: values are bound.
    insert = f"INSERT INTO papers ({', '.join(_INSERT_COLUMNS)}) VALUES "  # noqa: S608
    row_marks = "(" + ", ".join(["?"] * len(_INSERT_COLUMNS)) + ")"
    for start in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[start : start + _INSERT_ROWS]
        flat = tuple(value for row in chunk for value in row)
        conn.exec_driver_sql(insert + ", ".join([row_marks] * len(chunk)), flat)
    return len(rows)


def _update_values(row_id: int, paper: Paper, now: datetime) -> dict:
    """The parameters of the merge UPDATE for one changed row."""
    values = {name: getattr(paper, name) for name in _WRITTEN_ON_MERGE}
    for name in _TUPLE_FIELDS:  # all of them are merged fields
        values[name] = list(values[name])
    values.update(row_id=row_id, updated_at=now, search_text=paper_search_text(paper))
    return values


def _merge(old: Paper, new: Paper) -> dict:
    """The column changes that merging ``new`` into the stored ``old`` makes (may be empty).

    A value the new record has wins over the stored one; an empty value never erases one.
    """
    changes: dict = {}
    for name in _MERGED_FIELDS:
        value = getattr(new, name)
        if value in (None, "", ()) or (name in ("upvotes", "comments") and value == 0):
            continue
        if name == "version" and old.version is not None and value < old.version:
            continue  # a stale answer never takes a paper back to an older version
        if value != getattr(old, name):
            changes[name] = list(value) if isinstance(value, tuple) else value
    if new.listed_at and (old.listed_at is None or new.listed_at < old.listed_at):
        changes["listed_at"] = new.listed_at
    sources = tuple(dict.fromkeys(old.sources + new.sources))
    if sources != old.sources:
        changes["sources"] = list(sources)
    return changes


def _apply(paper: Paper, changes: dict) -> Paper:
    """``paper`` with the column changes of `_merge` applied."""
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    return dataclasses.replace(paper, **fields)


class _UpsertPlan:
    """What a batch does to the papers table, worked out in memory before any write.

    Records are merged in input order, a second record of the same paper into the first,
    exactly as one-row-at-a-time inserts and updates would; the plan keeps only the end state.
    """

    def __init__(self, stored: dict[str, tuple[int, Paper]]) -> None:
        self.current = {arxiv_id: paper for arxiv_id, (_, paper) in stored.items()}
        self.row_ids = {arxiv_id: row_id for arxiv_id, (row_id, _) in stored.items()}
        self.inserts: dict[str, Paper] = {}  # arXiv id -> the row to insert
        self.updates: dict[int, Paper] = {}  # row id -> the merged paper to write back
        self.result = UpsertResult()

    def add(self, paper: Paper) -> None:
        """Fold one record into the plan and note whether it was new, merged or unchanged."""
        arxiv_id = paper.arxiv_id
        old = self.current.get(arxiv_id)
        if old is None:
            self.current[arxiv_id] = self.inserts[arxiv_id] = paper
            self.result.new.append(arxiv_id)
            return
        changes = _merge(old, paper)
        if not changes:
            self.result.unchanged.append(arxiv_id)
            return
        merged = self.current[arxiv_id] = _apply(old, changes)
        if arxiv_id in self.inserts:
            self.inserts[arxiv_id] = merged
        else:
            self.updates[self.row_ids[arxiv_id]] = merged
        self.result.merged.append(arxiv_id)


def _stored_papers(
    conn: Connection, arxiv_ids: Iterable[str], fields: Sequence[str] = _PAPER_FIELDS
) -> dict[str, tuple[int, Paper]]:
    """The stored rows among ``arxiv_ids``: arXiv id -> (row id, paper).

    Only the Paper ``fields`` are read (never search_text, as long as the abstract), through
    the driver: on PostgreSQL in one ``= ANY(array)`` query (psycopg parsed each 500-id IN
    list anew: 0.3 s of 10,000 known papers' 0.65 s CPU, and the wall time was 1.8 s); on
    SQLite in IN lists of IN_CHUNK. The list and time columns are decoded once per
    distinct value: a batch repeats a few category lists and days thousands of times.
    """
    decode = _Decoder(conn.dialect.name, fields)
    # Only fixed column names are formatted in: the ids are bound.
    select = f"SELECT id, {', '.join(decode.selected)} FROM papers WHERE arxiv_id "  # noqa: S608
    if conn.dialect.name == "postgresql":
        queries = [(select + "= ANY(%s)", ([*arxiv_ids],))]
    else:
        queries = [
            (select + f"IN ({', '.join('?' * len(c))})", tuple(c)) for c in in_chunks(arxiv_ids)
        ]
    found: dict[str, tuple[int, Paper]] = {}
    at = fields.index("arxiv_id")
    for sql, params in queries:
        for row in conn.exec_driver_sql(sql, params):
            values = decode(row)
            found[values[at]] = (row[0], Paper(**dict(zip(fields, values, strict=True))))
    return found


class _Decoder:
    """Reads a row's JSON list columns as text (and its time columns as the driver gives
    them), decoding each distinct value once, to exactly what row_to_paper makes of the
    typed columns."""

    def __init__(self, dialect: str, fields: Sequence[str]) -> None:
        lists = set(_TUPLE_FIELDS)
        times = set(_TIME_FIELDS)
        self.sqlite = dialect == "sqlite"
        self.selected = [f"CAST({name} AS TEXT)" if name in lists else name for name in fields]
        # Positions in the row, which starts with the id.
        self.lists = [i for i, name in enumerate(fields, start=1) if name in lists]
        self.times = [i for i, name in enumerate(fields, start=1) if name in times]
        self.seen_lists: dict[str, tuple[str, ...]] = {}
        self.seen_times: dict[object, datetime] = {}

    def __call__(self, row: Sequence) -> list:
        """The Paper values of one row (without its id), in ``fields`` order."""
        values = list(row)
        seen = self.seen_lists
        for i in self.lists:
            text = values[i]
            if text is None:
                values[i] = ()
            elif (known := seen.get(text)) is not None:
                values[i] = known
            else:
                values[i] = seen[text] = tuple(json.loads(text))
        for i in self.times:
            value = values[i]
            if value is not None:
                time = self.seen_times.get(value)
                if time is None:
                    time = _utc(value) if self.sqlite else value.astimezone(UTC)
                    self.seen_times[value] = time
                values[i] = time
        return values[1:]


def _utc(text: str) -> datetime:
    """A time as SQLite holds it, read as the UtcDateTime column reads it."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PaperStore(StoreBase):
    """Queries on papers, editions and edition_papers."""

    def upsert_papers(self, papers: Iterable[Paper]) -> UpsertResult:
        """Store papers in one transaction, merging with rows of the same arXiv id.

        All or nothing: a failure leaves the database as it was. Known rows are read in
        chunks and written back only when a merge changed them; new rows go in multi-row
        INSERTs on SQLite, one COPY on PostgreSQL (a SELECT and an INSERT per paper cost
        6.9 s for 10,000 papers).
        """
        batch = list(papers)
        now = utcnow()
        with self.transaction() as conn:
            stored = _stored_papers(conn, {p.arxiv_id for p in batch}, _READ_FOR_MERGE)
            plan = _UpsertPlan(stored)
            for paper in batch:
                plan.add(paper)
            t = schema.papers
            if plan.inserts:
                inserted = _insert_new(conn, plan.inserts.values(), now)
                if self.dialect == "postgresql" and inserted >= IN_CHUNK:
                    # A long-lived process (`digest serve`) keeps psycopg's prepared chunk
                    # SELECT with the plan made while the table was small: a sequential scan
                    # that made the next collect of 10,000 known papers 5 s instead of 0.4 s.
                    # Fresh statistics invalidate that plan. Only arxiv_id's: the whole table's
                    # would also sample the search index's expression (1.9 s of 10,000 papers
                    # when it was to_tsvector). A column list leaves the table due for
                    # autovacuum's own ANALYZE, which does that part later, off this path.
                    conn.exec_driver_sql("ANALYZE papers (arxiv_id)")
            if plan.updates:
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == sa.bindparam("row_id"))
                    .values(
                        {
                            c: sa.bindparam(c)
                            for c in (*_WRITTEN_ON_MERGE, "search_text", "updated_at")
                        }
                    ),
                    [_update_values(row_id, p, now) for row_id, p in plan.updates.items()],
                )
        return plan.result

    def get_paper(self, arxiv_id: str) -> Paper | None:
        """The stored paper with this version-less id, or None."""
        t = schema.papers
        with self.transaction() as conn:
            row = conn.execute(sa.select(t).where(t.c.arxiv_id == arxiv_id)).mappings().first()
        return row_to_paper(row) if row else None

    def get_papers(self, arxiv_ids: Iterable[str]) -> dict[str, Paper]:
        """The stored papers among these version-less ids, by id (unknown ids are absent).

        A paper only a reader's library brought (``reference_papers``) is found too: its
        text is what "for me" needs of a like.
        """
        wanted = set(arxiv_ids)
        with self.transaction() as conn:
            found = {a: paper for a, (_, paper) in _stored_papers(conn, wanted).items()}
            r = schema.reference_papers
            for chunk in in_chunks(wanted - set(found)):
                for row in conn.execute(sa.select(r).where(r.c.arxiv_id.in_(chunk))).mappings():
                    found[row["arxiv_id"]] = Paper(
                        row["arxiv_id"],
                        row["title"],
                        row["abstract"] or "",
                        authors=tuple(row["authors"] or ()),
                        categories=tuple(row["categories"] or ()),
                    )
            return found

    def ids_with_categories(self, arxiv_ids: Iterable[str]) -> set[str]:
        """Which of ``arxiv_ids`` are stored with their arXiv categories (no need to ask again)."""
        t = schema.papers
        found: set[str] = set()
        with self.transaction() as conn:
            for chunk in in_chunks(arxiv_ids):
                query = sa.select(t.c.arxiv_id, t.c.categories).where(t.c.arxiv_id.in_(chunk))
                found.update(arxiv_id for arxiv_id, categories in conn.execute(query) if categories)
        return found

    def count_papers(self) -> int:
        """How many papers are stored."""
        with self.transaction() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(schema.papers)) or 0

    def unpublished_papers(
        self, frequency: Frequency, since: datetime | None = None
    ) -> list[Paper]:
        """Papers first seen after ``since`` that no edition of ``frequency`` has held yet."""
        p, ep, e = schema.papers, schema.edition_papers, schema.editions
        published = (
            sa.select(ep.c.paper_id)
            .join(e, e.c.id == ep.c.edition_id)
            .where(e.c.frequency == str(frequency))
        )
        query = sa.select(p).where(p.c.id.not_in(published)).order_by(p.c.id)
        if since is not None:
            query = query.where(p.c.first_seen_at > since)
        with self.transaction() as conn:
            return [row_to_paper(r) for r in conn.execute(query).mappings()]
