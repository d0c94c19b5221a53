"""Shared fixtures: a clean environment, real SQLite files, settings pointing at tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


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
