"""`digest subscribers ...` and the library under it, against a real SQLite file and the file
outbox: add, import (bad rows, case, duplicates, suppression), export round trip, list,
remove, delete, double opt-in emails, and `digest web`'s refusal without a secret."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import subscribers as subs
from digest.errors import DigestError
from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.store import Store
from tests.conftest import TEST_SECRET


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_BASE_URL": "https://digest.example.org",
    }


@pytest.fixture
def run(env: dict[str, str]):
    from digest.cli import cli

    def invoke(*args: str, **extra_env: str):
        return CliRunner().invoke(cli, list(args), env={**env, **extra_env})

    return invoke


@pytest.fixture
def topics(settings) -> list[str]:
    return subs.known_topics(settings)


def opened(db_url: str) -> Store:
    store = Store(db_url)
    store.migrate()
    return store


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the library ------------------------------------------------------------------------------


def test_addresses_are_validated_and_lower_cased() -> None:
    assert subs.normalize_email("  Jane.Doe@Example.ORG ") == "jane.doe@example.org"
    for bad in ("", "jane", "jane@", "@example.org", "a b@example.org", "x@localhost"):
        with pytest.raises(DigestError, match="email address"):
            subs.normalize_email(bad)


def test_suppression_hash_is_salted_by_the_secret_and_ignores_case() -> None:
    one = subs.email_hash(TEST_SECRET, "Jane@Example.org")
    assert one == subs.email_hash(TEST_SECRET, "jane@example.org")
    assert one != subs.email_hash("another-secret-key-0123456789-abcdef", "jane@example.org")
    assert "jane" not in one and len(one) == 64


def test_topics_are_split_on_semicolons_or_bars_and_matched_to_the_taxonomy(
    topics: list[str],
) -> None:
    text = f" {topics[0].upper()} ;{topics[1]}| {topics[0]} "
    assert subs.resolve_topics(subs.split_list(text), topics) == (topics[0], topics[1])
    with pytest.raises(DigestError, match="unknown topic 'knitting'"):
        subs.resolve_topics(["knitting"], topics)


def test_a_confirmation_nonce_works_once_even_when_clicks_race(store: Store) -> None:
    sub = store.add_subscriber(
        Subscriber(email="a@example.org", status=SubscriberStatus.UNCONFIRMED)
    )
    nonce = store.next_confirm_nonce(sub.id)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.confirm_subscriber(sub.id, nonce)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE


# --- add, list, remove, delete ------------------------------------------------------------------


def test_add_list_remove_delete(run, db_url: str, topics: list[str]) -> None:
    added = run("subscribers", "add", "Jane@Example.org", "--topic", topics[0],
                "--keyword", "diffusion", "--frequency", "weekly")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added jane@example.org (active)" in added.output
    assert run("subscribers", "add", "bob@example.org").exit_code == 0

    again = run("subscribers", "add", "JANE@example.org")
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: jane@example.org is already on the list (active)"
    bad = run("subscribers", "add", "not-an-address")
    assert bad.exit_code == 1 and len(bad.stderr.strip().splitlines()) == 1
    unknown = run("subscribers", "add", "x@example.org", "--topic", "knitting")
    assert unknown.exit_code == 1 and "unknown topic" in unknown.stderr

    assert run("subscribers", "remove", "bob@example.org").exit_code == 0
    listing = run("subscribers", "list")
    lines = listing.output.splitlines()
    assert any(line.split()[:2] == ["jane@example.org", "active"] for line in lines)
    assert any(line.split()[:2] == ["bob@example.org", "unsubscribed"] for line in lines)
    only = run("subscribers", "list", "--status", "unsubscribed").output
    assert "bob@example.org" in only and "jane@example.org" not in only

    store = opened(db_url)
    jane = store.find_subscriber("jane@example.org")
    assert jane.topics == (topics[0],) and jane.keywords == ("diffusion",)
    assert jane.frequency is Frequency.WEEKLY and jane.confirmed_at is not None

    deleted = run("subscribers", "delete", "jane@example.org")
    assert deleted.exit_code == 0 and "suppression list" in deleted.output
    assert store.find_subscriber("jane@example.org") is None
    with store.engine.connect() as conn:  # nothing readable is left anywhere
        dump = "\n".join(conn.connection.driver_connection.iterdump())
    assert "jane@example.org" not in dump.lower()
    refused = run("subscribers", "add", "jane@example.org")
    assert refused.exit_code == 1 and "suppression list" in refused.stderr
    store.close()


def test_add_with_double_opt_in_writes_a_confirmation_email(
    run, db_url: str, tmp_path: Path
) -> None:
    result = run("subscribers", "add", "ada@example.org", "--double-opt-in")
    assert result.exit_code == 0, result.output
    store = opened(db_url)
    assert store.find_subscriber("ada@example.org").status is SubscriberStatus.UNCONFIRMED
    emls = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(emls) == 1
    msg = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
    assert msg["To"] == "ada@example.org"
    assert "https://digest.example.org/confirm/" in msg.get_body(("plain",)).get_content()
    store.close()


# --- import and export ------------------------------------------------------------------------


def test_import_reports_bad_rows_by_line_and_never_duplicates(
    run, db_url: str, tmp_path: Path, topics: list[str]
) -> None:
    run("subscribers", "add", "existing@example.org")
    run("subscribers", "add", "gone@example.org")
    run("subscribers", "delete", "gone@example.org")
    csv_file = write_csv(
        tmp_path / "people.csv",
        "email,topics,frequency\n"
        f"Ada@Example.org,{topics[0]};{topics[1]},weekly\n"  # line 2
        "not an address,,\n"  # line 3
        f"bob@example.org,{topics[1]}|{topics[2]},\n"  # line 4
        "ADA@example.org,,daily\n"  # line 5: the same person again
        "carol@example.org,knitting,\n"  # line 6: unknown topic
        "dan@example.org,,hourly\n"  # line 7: bad frequency
        "existing@example.org,,\n"  # line 8
        "Gone@example.org,,\n"  # line 9: deleted earlier, stays suppressed
        "\n",
    )
    result = run("subscribers", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert (
        "imported 2; already on the list 1; suppressed 1; repeated in the file 1; bad rows 3"
        in (result.output)
    )
    problems = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert [p.split(":")[1] for p in problems] == ["3", "6", "7"]
    assert "email address" in problems[0] and "knitting" in problems[1]
    assert "hourly" in problems[2]

    store = opened(db_url)
    ada = store.find_subscriber("ada@example.org")
    assert ada.topics == (topics[0], topics[1]) and ada.frequency is Frequency.WEEKLY
    assert ada.status is SubscriberStatus.ACTIVE
    assert store.find_subscriber("bob@example.org").topics == (topics[1], topics[2])
    assert store.find_subscriber("gone@example.org") is None

    again = run("subscribers", "import", str(csv_file))
    assert "imported 0; already on the list 3" in again.output
    assert len(store.list_subscribers()) == 3
    store.close()


def test_import_with_double_opt_in_mails_each_new_subscriber(
    run, db_url: str, tmp_path: Path
) -> None:
    csv_file = write_csv(tmp_path / "p.csv", "\ufeffEmail\na@example.org\nb@example.org\n")
    result = run("subscribers", "import", str(csv_file), "--double-opt-in")
    assert result.exit_code == 0, result.output
    store = opened(db_url)
    assert {s.status for s in store.list_subscribers()} == {SubscriberStatus.UNCONFIRMED}
    recipients = sorted(
        email.message_from_bytes(p.read_bytes())["To"] for p in (tmp_path / "outbox").rglob("*.eml")
    )
    assert recipients == ["a@example.org", "b@example.org"]
    store.close()


def test_import_refuses_a_file_without_an_email_column(run, tmp_path: Path) -> None:
    result = run("subscribers", "import", str(write_csv(tmp_path / "x.csv", "name\nAda\n")))
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("the header row has no 'email' column")
    missing = run("subscribers", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


def test_export_round_trips_through_import(
    run, env: dict[str, str], tmp_path: Path, topics: list[str]
) -> None:
    run("subscribers", "add", "ada@example.org", "--topic", topics[0], "--topic", topics[1],
        "--frequency", "weekly")  # fmt: skip
    run("subscribers", "add", "bob@example.org")
    run("subscribers", "remove", "bob@example.org")
    exported = run("subscribers", "export", "--out", str(tmp_path / "all.csv"))
    assert exported.exit_code == 0
    as_json = json.loads(run("subscribers", "export", "--format", "json").output)
    assert {r["email"]: r["status"] for r in as_json} == {
        "ada@example.org": "active",
        "bob@example.org": "unsubscribed",
    }
    assert as_json[0]["topics"] == [topics[0], topics[1]]

    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    moved = run("subscribers", "import", str(tmp_path / "all.csv"), DIGEST_DATABASE_URL=other_db)
    assert moved.exit_code == 0, moved.output
    store = opened(other_db)
    ada, bob = store.find_subscriber("ada@example.org"), store.find_subscriber("bob@example.org")
    assert ada.topics == (topics[0], topics[1]) and ada.frequency is Frequency.WEEKLY
    assert bob.status is SubscriberStatus.UNSUBSCRIBED  # an export never re-subscribes anyone
    store.close()


# --- digest web -------------------------------------------------------------------------------


def test_web_refuses_to_start_without_a_secret(run) -> None:
    result = run("web", DIGEST_SECRET_KEY="")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: DIGEST_SECRET_KEY")
    assert len(result.stderr.strip().splitlines()) == 1
    short = run("web", DIGEST_SECRET_KEY="too-short")
    assert short.exit_code == 2 and "32" in short.stderr


# --- the same store queries on PostgreSQL -------------------------------------------------------


@pytest.fixture
def pg_store() -> Store:
    """A fresh database of our own on the local PostgreSQL (skipped when there is none)."""
    import os

    import sqlalchemy as sa

    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
    )
    name = f"digest_subscribers_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    store = Store(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    store.migrate()
    yield store
    store.close()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_subscriber_lifecycle_on_postgresql(pg_store: Store) -> None:
    from datetime import date

    from digest.models import Edition

    store = pg_store
    pending = subs.request_subscription(store, TEST_SECRET, "New@Example.org")
    assert pending.status is SubscriberStatus.UNCONFIRMED
    nonce = store.next_confirm_nonce(pending.id)
    assert store.confirm_subscriber(pending.id, nonce).status is SubscriberStatus.ACTIVE
    assert store.confirm_subscriber(pending.id, nonce) is None  # single use

    edition = store.save_edition(
        Edition(key="daily-2026-11-26", frequency=Frequency.DAILY, date=date(2026, 11, 26),
                themes=())
    )  # fmt: skip
    store.queue_deliveries(edition.id, [pending.id])
    assert store.unsubscribe(pending.id) and not store.unsubscribe(pending.id)
    assert subs.delete(store, TEST_SECRET, "new@example.org")
    assert store.deliveries(edition.id) == []  # the ledger rows went with the person
    assert subs.request_subscription(store, TEST_SECRET, "new@example.org") is None
    store.suppress(subs.email_hash(TEST_SECRET, "new@example.org"), "bounced")  # idempotent

    added = store.add_subscribers(
        [Subscriber(email="a@example.org"), Subscriber(email="a@example.org")]
    )
    assert len(added) == 1 and store.existing_emails(["a@example.org", "b@x.org"]) == {
        "a@example.org"
    }
