"""The connection to the database: engine, migrations, transactions, small facts."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.config import ConfigError
from digest.errors import DigestError
from digest.store import schema

__all__ = ["AlreadyExists", "StoreBase", "StoreError", "advisory_key", "in_chunks", "utcnow"]

T = TypeVar("T")


def utcnow() -> datetime:
    """The current time, aware, in UTC (the only kind of datetime the store accepts)."""
    return datetime.now(UTC)


# SQLite allows 32,766 bound parameters (999 before 3.32); IN lists are sent in chunks.
IN_CHUNK = 500


def in_chunks(values: Iterable[T]) -> Iterator[list[T]]:
    """``values`` in lists of at most IN_CHUNK, for ``column.in_(chunk)`` queries."""
    items = list(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


class StoreError(DigestError):
    """The database cannot be used as asked (unreachable, wrong URL, newer schema)."""


class AlreadyExists(StoreError):
    """A row with this unique key (edition key, email address) is already stored."""


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key for ``name``, the same in every process (unlike hash())."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the web app read while a send writes; busy_timeout waits out short write locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StoreBase:
    """Owns the engine; the area mixins (papers, subscribers, ...) add queries on top."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            self.engine: Engine = sa.create_engine(url, echo=echo, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"DIGEST_DATABASE_URL: cannot use {_redact(url)!r}: {exc}") from None
        self.url = url
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

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
        except sa.exc.IntegrityError as exc:
            # Callers outside the store see the store's error, never SQLAlchemy's.
            raise AlreadyExists(f"already stored: {exc.orig}") from exc
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc
        except sa.exc.DatabaseError as exc:
            raise self._database_error(exc) from None

    # --- schema ---

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("digest.store") / "migrations"))
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

    def _database_error(self, exc: sa.exc.DatabaseError) -> DigestError:
        """SQLite's "file is not a database" means the URL names the wrong file: a setting."""
        if self.dialect == "sqlite" and type(exc.orig).__name__ == "DatabaseError":
            return ConfigError(
                f"DIGEST_DATABASE_URL: {_redact(self.url)} is not a database digest can use "
                f"({exc.orig})"
            )
        return StoreError(f"database error: {exc.orig}")

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
        """Store a fact, replacing an earlier value."""
        with self.transaction() as conn:
            conn.execute(sa.delete(schema.meta).where(schema.meta.c.key == key))
            conn.execute(sa.insert(schema.meta).values(key=key, value=value))


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"
