"""Shared fixtures: a clean environment, real SQLite files, settings pointing at tmp_path."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.config import Settings, load_settings
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DIGEST_* variable or .env file leaks into a test; each test runs in its own folder."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A real SQLite file in the test's folder."""
    return f"sqlite:///{tmp_path / 'digest.db'}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings for a test: SQLite file, file outbox, a fixed secret key."""
    return load_settings(
        database_url=db_url,
        outbox=tmp_path / "outbox",
        secret_key=TEST_SECRET,
        base_url="https://digest.example.org",
        sender="digest <digest@example.org>",
    )


@pytest.fixture
def store(db_url: str) -> Store:
    """A migrated store on a real SQLite file."""
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, db_url: str) -> str:
    """A real SQLite file, or a throw-away PostgreSQL database (skipped when unreachable)."""
    return db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def any_store(any_db_url: str) -> Iterator[Store]:
    """A migrated store on each database: a real SQLite file, then throw-away PostgreSQL."""
    s = Store(any_db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second, empty database beside ``db_url`` (to import into): SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("pg_url")


@contextlib.contextmanager
def throwaway_postgres(prefix: str = "digest_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards; skips when there is none.

    Each caller gets its own, so parallel test runs never collide.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except (sa.exc.OperationalError, ImportError) as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {str(exc).splitlines()[0]}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for the test (see throwaway_postgres)."""
    with throwaway_postgres() as url:
        yield url
