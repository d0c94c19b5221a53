"""The connection to the database: engine, migrations, transactions, small facts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.config import ConfigError
from digest.errors import DigestError
from digest.store import schema

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "SCHEMA_HEAD",
    "AlreadyExists",
    "SchemaState",
    "StoreBase",
    "StoreError",
    "advisory_key",
    "among",
    "in_chunks",
    "utcnow",
]

T = TypeVar("T")


def utcnow() -> datetime:
    """The current time, aware, in UTC (the only kind of datetime the store accepts)."""
    return datetime.now(UTC)


# The newest schema revision in digest/store/migrations (a test checks they agree). A database
# already at it needs no migration, which spares every command Alembic's 0.2 s of start-up.
SCHEMA_HEAD = "0008"

# SQLite allows 32,766 bound parameters (999 before 3.32); IN lists are sent in chunks.
IN_CHUNK = 500
# How long an SQLite connection waits for another's write lock (and for a racing WAL switch).
_BUSY_TIMEOUT_MS = 30000


def in_chunks(values: Iterable[T]) -> Iterator[list[T]]:
    """``values`` in lists of at most IN_CHUNK, for ``column.in_(chunk)`` queries."""
    items = list(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def among(column: sa.ColumnElement[Any], values: Iterable[Any], dialect: str) -> list[Any]:
    """``column IN values`` as conditions, one per query to run.

    On PostgreSQL one ``= ANY(array)`` whatever the count: a statement of the same text each
    time, where an IN list is rendered with a parameter per value and parsed anew by psycopg
    (a third of the CPU of claiming a batch of 1,000 readers). On SQLite IN lists of IN_CHUNK.
    """
    items = list(values)
    if dialect == "postgresql":
        array = sa.bindparam("among", items, type_=sa.ARRAY(column.type), unique=True)
        return [column == sa.any_(array)]
    return [column.in_(chunk) for chunk in in_chunks(items)]


class StoreError(DigestError):
    """The database cannot be used as asked (unreachable, wrong URL, newer schema)."""


class AlreadyExists(StoreError):
    """A row with this unique key (edition key, email address) is already stored."""


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key for ``name``, the same in every process (unlike hash())."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@dataclass(frozen=True)
class SchemaState:
    """What a database holds, read without changing it: `digest check` and ``migrate`` ask."""

    revision: str | None  # the digest schema revision it is at; None before `digest init`
    head: str  # the newest revision this code knows
    tables: tuple[str, ...] = ()  # every table but Alembic's own
    missing: bool = False  # an SQLite file that does not exist yet

    @property
    def strangers(self) -> bool:
        """True for someone else's database: tables (even ones named like ours), no revision."""
        return self.revision is None and bool(self.tables)

    @property
    def current(self) -> bool:
        """True when the schema is at the newest revision."""
        return self.revision == self.head


def _not_a_database(dialect: str, exc: sa.exc.DatabaseError) -> bool:
    """SQLite's plain DatabaseError: the file is not a database (not a locked or busy one)."""
    return dialect == "sqlite" and type(exc.orig).__name__ == "DatabaseError"


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # busy_timeout waits out short write locks; WAL lets the web app read while a send writes.
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting out a switch racing ours.

    SQLite answers "database is locked" at once, without the busy handler, to a connection
    changing the journal mode of a new file while another does the same (processes starting
    together on a new database). The switch is retried until busy_timeout has passed.
    """
    import sqlite3  # only SQLite connections come here; loaded with the engine's dialect

    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class StoreBase:
    """Owns the engine; the area mixins (papers, subscribers, ...) add queries on top."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            self.engine: Engine = sa.create_engine(url, echo=echo, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"DIGEST_DATABASE_URL: cannot use {_redact(url)!r}: {exc}") from None
        self.url = url
        self._async_engine: AsyncEngine | None = None  # in_transaction's, on PostgreSQL
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def dialect_insert(self, table: sa.Table) -> sa.Insert:
        """An INSERT into ``table`` that can say ON CONFLICT, in this database's dialect.

        The dialect module loads here, when used: importing PostgreSQL's cost every command
        0.06 s on SQLite (the engine loads its own dialect anyway).
        """
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        A unique key taken by another row raises AlreadyExists; an unusable database StoreError.
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.DatabaseError as exc:
            self._raise_store_error(exc)

    async def in_transaction(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` inside one transaction, as ``transaction`` runs it, from a coroutine.

        On PostgreSQL the same code runs through SQLAlchemy's asyncio engine: each round trip
        is awaited, so the event loop serves its other tasks (the send's connections) while
        the server works. SQLite has no round trip to wait for: ``work`` runs at once, and the
        loop then gets its turn, so a caller that splits its work into pieces keeps the send's
        connections going between them as on PostgreSQL.
        """
        if self.dialect != "postgresql":
            with self.transaction() as conn:
                done = work(conn)
            await asyncio.sleep(0)
            return done
        if self._async_engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine

            self._async_engine = create_async_engine(self.engine.url)
        try:
            async with self._async_engine.begin() as conn:
                return await conn.run_sync(work)
        except sa.exc.DatabaseError as exc:
            self._raise_store_error(exc)

    async def aclose(self) -> None:
        """Close the connections ``in_transaction`` opened (on the loop that opened them)."""
        if self._async_engine is not None:
            engine, self._async_engine = self._async_engine, None
            await engine.dispose()

    def _raise_store_error(self, exc: sa.exc.DatabaseError) -> NoReturn:
        """Raise the store's error for SQLAlchemy's: callers outside the store never see it."""
        if isinstance(exc, sa.exc.IntegrityError):
            raise AlreadyExists(f"already stored: {exc.orig}") from exc
        if isinstance(exc, sa.exc.OperationalError):
            raise StoreError(f"database error: {exc.orig}") from exc
        raise self._database_error(exc) from None

    @property
    def display_url(self) -> str:
        """The database URL without its password, for messages."""
        return _redact(self.url)

    # --- schema ---

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision (idempotent).

        Refuses a database holding someone else's tables: digest's table names (papers,
        subscribers, meta ...) are common words, and mixing them into another schema is a
        mistake in DIGEST_DATABASE_URL far more often than a wish.
        """
        if self._at_head():
            return
        from alembic import command

        state = self.schema_state()
        if state.strangers:
            shown = ", ".join(state.tables[:3]) + (", ..." if len(state.tables) > 3 else "")
            raise StoreError(
                f"DIGEST_DATABASE_URL: {self.display_url} is not a digest database (other "
                f"tables: {shown}; no digest schema revision); digest leaves it alone: point "
                "DIGEST_DATABASE_URL at a new file or an empty database"
            )
        cfg = _alembic_config()
        try:
            with self.engine.begin() as conn:
                # One migration at a time, held to the end of this transaction: processes
                # starting together on an empty database (compose starts the scheduler and the
                # web app at once) would both create the tables and one would fail.
                if self.dialect == "postgresql":
                    key = advisory_key("digest.migrate")
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                else:  # SQLite's write lock, taken now (busy_timeout waits for it)
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the database {_redact(self.url)}: {exc.orig}") from None
        except sa.exc.DatabaseError as exc:
            raise self._database_error(exc) from None

    def _reading_engine(self) -> Engine | None:
        """An engine that reads without changing anything; None for a missing SQLite file.

        An SQLite file is opened read-only (the store's own connections would switch it to
        WAL, even someone else's file); the caller disposes of an engine that is not its own.
        """
        path = _sqlite_path(self.url)
        if path is None:
            return self.engine
        if not path.exists():
            return None
        return sa.create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true")

    def _at_head(self) -> bool:
        """True when the database says it is at SCHEMA_HEAD (any doubt: False, and migrate)."""
        if (engine := self._reading_engine()) is None:
            return False
        try:
            with engine.connect() as conn:
                found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except sa.exc.DBAPIError:  # no such table, not a database, unreachable: the full path
            return False
        finally:
            if engine is not self.engine:
                engine.dispose()
        return found == [(SCHEMA_HEAD,)]

    def _database_error(self, exc: sa.exc.DatabaseError) -> DigestError:
        """SQLite's "file is not a database" means the URL names the wrong file: a setting."""
        if _not_a_database(self.dialect, exc):
            return ConfigError(
                f"DIGEST_DATABASE_URL: {_redact(self.url)} is not a database digest can use "
                f"({exc.orig})"
            )
        return StoreError(f"database error: {exc.orig}")

    def schema_state(self) -> SchemaState:
        """The schema revision and tables, read without creating, migrating or converting.

        An SQLite file is opened read-only (the store's own connections would switch it to
        WAL); one that does not exist is reported missing, not created.
        """
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
        if (engine := self._reading_engine()) is None:
            return SchemaState(revision=None, head=head, missing=True)
        try:
            with engine.connect() as conn:
                tables = tuple(sorted(sa.inspect(conn).get_table_names()))
                revision = MigrationContext.configure(conn).get_current_revision()
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.DatabaseError) and _not_a_database(self.dialect, exc):
                raise self._database_error(exc) from None
            reason = " ".join(str(exc.orig).split())  # one line, whatever the driver says
            raise StoreError(f"cannot read the database {self.display_url}: {reason}") from None
        finally:
            if engine is not self.engine:
                engine.dispose()
        return SchemaState(
            revision=revision, head=head, tables=tuple(t for t in tables if t != "alembic_version")
        )

    def revision(self) -> str | None:
        """The schema revision the database is at, or None before `digest init`."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # --- small facts ---

    def get_meta(self, key: str) -> str | None:
        """A stored fact by key, or None."""
        with self.transaction() as conn:
            return conn.scalar(sa.select(schema.meta.c.value).where(schema.meta.c.key == key))

    def set_meta(self, key: str, value: str) -> None:
        """Store a fact, replacing an earlier value.

        One upsert, so two workers setting the same fact at once both succeed (a delete then an
        insert let the second fail on the unique key).
        """
        insert = self.dialect_insert(schema.meta).values(key=key, value=value)
        with self.transaction() as conn:
            conn.execute(
                insert.on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )


def _alembic_config() -> Config:
    """Alembic's configuration for digest's migrations (alembic loads only when needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("digest.store") / "migrations"))
    return cfg


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for other databases and in-memory SQLite."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"
