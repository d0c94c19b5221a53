"""`digest subscribers export` then `import` round-trips exactly, CSV and JSON (issue 11 #6).

Every status, topics, keywords, frequency, limits and dates survive a move to a fresh SQLite
or PostgreSQL database; an import never re-activates an address that unsubscribed, bounced or
was deleted, and sends no email unless --double-opt-in asks for it.
"""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest import subscribers as subs
from digest.cli import cli
from digest.store import Store
from digest.store.schema import subscribers as subscribers_table
from tests.conftest import TEST_SECRET


def _run(env: dict[str, str], *args: str, **extra: str):
    return CliRunner().invoke(cli, list(args), env={**env, **extra})


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_BASE_URL": "https://digest.example.org",
    }


@pytest.fixture
def topics(settings) -> list[str]:
    return subs.known_topics(settings)


def _at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 3, day, hour, 15, 30, 123456, tzinfo=UTC)


def _people(topics: list[str]) -> list[dict]:
    """One subscriber in every status, each with its own preferences and dates."""
    return [
        {"email": "una@example.org", "status": "unconfirmed", "topics": [topics[2]],
         "keywords": [], "frequency": "daily", "max_papers": None, "min_score": None,
         "created_at": _at(1), "confirmed_at": None},
        {"email": "ada@example.org", "status": "active", "topics": [topics[0], topics[1]],
         "keywords": ["diffusion", "graph neural networks"], "frequency": "weekly",
         "max_papers": 12, "min_score": 2.5, "created_at": _at(2), "confirmed_at": _at(3)},
        {"email": "pat@example.org", "status": "paused", "topics": [], "keywords": ["robots"],
         "frequency": "daily", "max_papers": 5, "min_score": None, "created_at": _at(4),
         "confirmed_at": _at(4, 10)},
        {"email": "ulf@example.org", "status": "unsubscribed", "topics": [topics[3]],
         "keywords": [], "frequency": "weekly", "max_papers": None, "min_score": 0.75,
         "created_at": _at(5), "confirmed_at": _at(6)},
        {"email": "bea@example.org", "status": "bounced", "topics": [], "keywords": [],
         "frequency": "daily", "max_papers": None, "min_score": None, "created_at": _at(7),
         "confirmed_at": _at(8)},
    ]  # fmt: skip


def _seed(db_url: str, people: list[dict]) -> None:
    store = Store(db_url)
    store.migrate()
    with store.transaction() as conn:
        conn.execute(sa.insert(subscribers_table), [{**p, "confirm_nonce": 0} for p in people])
    store.close()


def _emails_sent(tmp_path: Path) -> list[str]:
    return sorted(
        email.message_from_bytes(p.read_bytes())["To"] for p in (tmp_path / "outbox").rglob("*.eml")
    )


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_export_is_identical(
    env: dict[str, str], db_url: str, fresh_url: str, tmp_path: Path, topics: list[str], fmt: str
) -> None:
    _seed(db_url, _people(topics))
    first = _run(env, "subscribers", "export", "--format", fmt, "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output

    moved = _run(env, "subscribers", "import", str(tmp_path / "a"), DIGEST_DATABASE_URL=fresh_url)
    assert moved.exit_code == 0, moved.output
    assert "imported 5; already on the list 0; suppressed 0" in moved.stdout
    assert _emails_sent(tmp_path) == []  # the unconfirmed one is not asked again

    again = _run(env, "subscribers", "export", "--format", fmt, DIGEST_DATABASE_URL=fresh_url)
    assert again.stdout == (tmp_path / "a").read_text(encoding="utf-8")

    store = Store(fresh_url)
    try:
        by_email = {s.email: s for s in store.list_subscribers()}
    finally:
        store.close()
    assert {e: str(s.status) for e, s in by_email.items()} == {
        p["email"]: p["status"] for p in _people(topics)
    }
    ada = by_email["ada@example.org"]
    assert (ada.max_papers, ada.min_score, ada.keywords) == (
        12,
        2.5,
        ("diffusion", "graph neural networks"),
    )
    assert (ada.created_at, ada.confirmed_at) == (_at(2), _at(3))
    assert by_email["una@example.org"].confirmed_at is None


def test_a_json_export_imports_into_the_same_rows_as_the_csv_one(
    env: dict[str, str], db_url: str, tmp_path: Path, topics: list[str]
) -> None:
    _seed(db_url, _people(topics))
    csv_text = _run(env, "subscribers", "export").stdout
    json_rows = json.loads(_run(env, "subscribers", "export", "--format", "json").stdout)
    assert json_rows[1] == {
        "email": "ada@example.org",
        "status": "active",
        "topics": [topics[0], topics[1]],
        "keywords": ["diffusion", "graph neural networks"],
        "frequency": "weekly",
        "max_papers": 12,
        "min_score": 2.5,
        "created_at": "2026-03-02T09:15:30.123456+00:00",
        "confirmed_at": "2026-03-03T09:15:30.123456+00:00",
        # The reader's profile, at its defaults (tests/test_reader_profile.py fills it in).
        "likes": [],
        "dislikes": [],
        "blend": None,
        "follow_authors": [],
        "follow_orgs": [],
        "timezone": None,
        "send_hour": None,
        "empty_days": "skip",
        "followups": True,
    }
    assert csv_text.splitlines()[0] == (
        "email,status,topics,keywords,frequency,max_papers,min_score,created_at,confirmed_at,"
        "likes,dislikes,blend,follow_authors,follow_orgs,timezone,send_hour,empty_days,followups"
    )
    # Detected by content, not by name: a JSON export saved as .txt is still JSON.
    path = tmp_path / "backup.txt"
    path.write_text(json.dumps(json_rows), encoding="utf-8")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert _run(env, "subscribers", "import", str(path), DIGEST_DATABASE_URL=other).exit_code == 0
    assert _run(env, "subscribers", "export", DIGEST_DATABASE_URL=other).stdout == csv_text


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_importing_over_a_database_never_reactivates_anyone(
    env: dict[str, str], db_url: str, tmp_path: Path, topics: list[str], fmt: str
) -> None:
    _seed(db_url, _people(topics))
    assert _run(env, "subscribers", "delete", "gone@example.org").exit_code == 0
    claims = [
        {"email": e, "status": "active", "frequency": "daily"}
        for e in ("ulf@example.org", "bea@example.org", "Gone@Example.org", "una@example.org")
    ]
    path = tmp_path / f"claims.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(claims), encoding="utf-8")
    else:
        path.write_text(
            "email,status\n" + "".join(f"{c['email']},active\n" for c in claims), encoding="utf-8"
        )
    result = _run(env, "subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 0; already on the list 3; suppressed 1" in result.stdout
    store = Store(db_url)
    try:
        statuses = {s.email: str(s.status) for s in store.list_subscribers()}
    finally:
        store.close()
    assert statuses == {p["email"]: p["status"] for p in _people(topics)}  # nothing changed
    assert "gone@example.org" not in statuses


def test_unconfirmed_rows_stay_unconfirmed_and_get_mail_only_when_asked(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,status\n"
        "una@example.org,unconfirmed\n"
        "ada@example.org,\n"
        "pat@example.org,paused\n"
        "ulf@example.org,unsubscribed\n",
        encoding="utf-8",
    )
    quiet = f"sqlite:///{tmp_path / 'quiet.db'}"
    assert _run(env, "subscribers", "import", str(path), DIGEST_DATABASE_URL=quiet).exit_code == 0
    assert _emails_sent(tmp_path) == []
    store = Store(quiet)
    try:
        assert {s.email: str(s.status) for s in store.list_subscribers()} == {
            "una@example.org": "unconfirmed",
            "ada@example.org": "active",  # no status: the admin vouches for them
            "pat@example.org": "paused",
            "ulf@example.org": "unsubscribed",
        }
    finally:
        store.close()

    asked = _run(env, "subscribers", "import", str(path), "--double-opt-in")
    assert asked.exit_code == 0, asked.output
    assert _emails_sent(tmp_path) == ["ada@example.org", "una@example.org"]
    store = Store(db_url)
    try:
        assert {s.email: str(s.status) for s in store.list_subscribers()} == {
            "una@example.org": "unconfirmed",
            "ada@example.org": "unconfirmed",
            "pat@example.org": "paused",
            "ulf@example.org": "unsubscribed",
        }
    finally:
        store.close()


def test_bad_json_entries_are_reported_by_position_and_skipped(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "people.json"
    entries = [
        {"email": "ada@example.org", "topics": "Agents; Robotics", "max_papers": "7"},
        "bob@example.org",
        {"email": "cat@example.org", "status": "vip"},
        {"email": "dan@example.org", "created_at": "yesterday"},
        {"email": "eve@example.org", "min_score": "lots"},
        {"email": "fay@example.org", "keywords": {"a": 1}},
    ]
    path.write_text(json.dumps(entries), encoding="utf-8")
    result = _run(env, "subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 1;" in result.stdout and "bad rows 5" in result.stdout
    assert result.stderr.splitlines() == [
        f"{path}:#1: skipped: expected an object with an email, got str",
        f"{path}:#2: skipped: unknown status 'vip'",
        f"{path}:#3: skipped: created_at: not an ISO 8601 date: 'yesterday'",
        f"{path}:#4: skipped: min_score must be a number, not 'lots'",
        f"{path}:#5: skipped: keywords: expected a list of text",
    ]
    store = Store(db_url)
    try:
        ada = store.find_subscriber("ada@example.org")
    finally:
        store.close()
    assert (ada.topics, ada.max_papers) == (("Agents", "Robotics"), 7)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"email": "a@example.org"}', "not valid JSON: Expecting ',' delimiter (line 1"),
        ('{"email": "a@example.org"}', "expected a JSON list of subscribers, got an object"),
        ("[" * 100_000, "nested too deeply to be a subscriber list"),
        ("", "the file is empty"),
    ],
)
def test_a_broken_json_file_is_one_line(
    env: dict[str, str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "people.json"
    path.write_text(content, encoding="utf-8")
    result = _run(env, "subscribers", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: {message}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
