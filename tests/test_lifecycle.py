"""One edition lifecycle for every command (issue 11 #4): build, preview, approve, send.

Each test drives `digest` as an admin does, on a real SQLite file and the file outbox, and
reproduces a report: collected papers could not be previewed, `send --dry-run` described
the weekly edition while `send` sent the daily one, a daily subscriber was previewed the
weekly edition, and there was no way to hold an edition back until someone approved it.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.models import EditionStatus, Frequency
from digest.store import Store
from tests.test_delivery import add
from tests.test_pipeline import _papers_file, papers
from tests.test_send_cli import TEST_ENV


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {**TEST_ENV, "DIGEST_DATABASE_URL": db_url, "DIGEST_OUTBOX": str(tmp_path / "outbox")}


def handed(output: str, count: int, key: str) -> bool:
    """The send summary says ``count`` emails of edition ``key`` went to the file outbox."""
    return re.search(rf"{re.escape(key)}: written to \S+outbox: {count},", output) is not None


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def today_key(frequency: str = "daily") -> str:
    today = datetime.now(UTC).date()  # DIGEST_TIMEZONE defaults to UTC
    if frequency == "weekly":
        year, week, _ = today.isocalendar()
        return f"weekly-{year}-W{week:02d}"
    return f"daily-{today.isoformat()}"


def sent_to(outbox: Path, key: str) -> list[str]:
    """The recipients of the emails the file transport wrote for edition ``key``."""
    return sorted(
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        for p in (outbox / key).glob("*.eml")
    )


def test_collected_papers_can_be_previewed_and_dry_run_before_the_edition_is_built(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 2)
    assert invoke(env, "collect", "--file", str(_papers_file(tmp_path, 0, 6))).exit_code == 0
    out = tmp_path / "preview.html"
    shown = invoke(env, "preview", "--subscriber", "reader0@example.com", "--out", str(out))
    assert shown.exit_code == 0, shown.output
    key = today_key()
    assert f"{key} is not built yet" in shown.output
    html = out.read_text()
    assert all(p.abs_url in html for p in papers(0, 6))
    dry = invoke(env, "send", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"dry run of {key}: would send 2 emails" in dry.output
    # Looking changed nothing: no edition stored, nothing sent.
    assert store.list_editions() == [] and not (tmp_path / "outbox").exists()
    sent = invoke(env, "send")
    assert sent.exit_code == 0 and handed(sent.output, 2, key)  # what the dry run said
    assert sent_to(tmp_path / "outbox", key) == ["reader0@example.com", "reader1@example.com"]


def test_after_a_weekly_run_dry_run_and_send_both_mean_the_daily_edition(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 1, "daily")
    add(store, 1, "weekly", frequency=Frequency.WEEKLY)
    assert invoke(env, "collect", "--file", str(_papers_file(tmp_path, 0, 6))).exit_code == 0
    weekly = invoke(env, "run", "--frequency", "weekly")
    assert weekly.exit_code == 0 and handed(weekly.output, 1, today_key("weekly"))
    dry = invoke(env, "send", "--dry-run")
    assert f"dry run of {today_key()}: would send 1 emails" in dry.output, dry.output
    sent = invoke(env, "send")
    assert handed(sent.output, 1, today_key()), sent.output
    outbox = tmp_path / "outbox"
    assert sent_to(outbox, today_key()) == ["daily0@example.com"]
    assert sent_to(outbox, today_key("weekly")) == ["weekly0@example.com"]
    assert invoke(env, "send", "--frequency", "weekly").output.count("outbox: 0,") == 1


def test_a_daily_subscriber_is_never_previewed_the_weekly_edition(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 1, "daily")
    add(store, 1, "weekly", frequency=Frequency.WEEKLY)
    first, later = _papers_file(tmp_path, 0, 4), _papers_file(tmp_path, 10, 4)
    sources = {**env, "DIGEST_SOURCES": "file", "DIGEST_PAPERS_FILE": str(first)}
    assert invoke(sources, "run", "--date", "2026-11-25").exit_code == 0
    assert invoke(env, "collect", "--file", str(later)).exit_code == 0
    weekly_run = invoke(env, "run", "--frequency", "weekly", "--date", "2026-11-26")
    assert handed(weekly_run.output, 1, "weekly-2026-W48")  # the newest edition
    out = tmp_path / "daily.html"
    daily = invoke(env, "preview", "--subscriber", "daily0@example.com", "--out", str(out))
    assert daily.exit_code == 0, daily.output
    assert "weekly-" not in daily.output and today_key() in daily.output
    html = out.read_text()  # today's daily papers only, not the weekly edition's
    assert all(p.abs_url in html for p in papers(10, 4))
    assert not any(p.abs_url in html for p in papers(0, 4))
    for args in (["--edition", "weekly-2026-W48"], ["--frequency", "weekly"]):
        refused = CliRunner().invoke(
            cli, ["preview", "--subscriber", "daily0@example.com", *args], env=env
        )
        assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
        assert refused.output.startswith("error:") and "weekly" in refused.output
    weekly = invoke(env, "preview", "--subscriber", "weekly0@example.com", "--out", str(out))
    assert weekly.exit_code == 0 and "(weekly-" in weekly.output, weekly.output


def test_build_stores_the_edition_without_sending_and_send_sends_that_one(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 2)
    sources = {
        **env,
        "DIGEST_SOURCES": "file",
        "DIGEST_PAPERS_FILE": str(_papers_file(tmp_path, 0, 5)),
    }
    built = invoke(sources, "build", "--date", "2026-11-26")
    assert built.exit_code == 0, built.output
    assert "collect file: fetched 5, new 5" in built.output
    assert "built edition daily-2026-11-26 from 5 new papers" in built.output
    edition = store.get_edition("daily-2026-11-26")
    assert edition.status is EditionStatus.DRAFT and len(edition.papers) == 5
    assert store.deliveries(edition.id) == [] and not (tmp_path / "outbox").exists()
    assert store.recent_runs(1)[0]["kind"] == "build"
    more = {**sources, "DIGEST_PAPERS_FILE": str(_papers_file(tmp_path, 20, 3))}
    again = invoke(more, "build", "--date", "2026-11-26", "--no-collect")
    assert "collect" not in again.output and "already exists" in again.output
    assert len(store.get_edition("daily-2026-11-26").papers) == 5  # a built edition stays put
    sent = invoke(env, "send", "--edition", "daily-2026-11-26")
    assert sent.exit_code == 0 and handed(sent.output, 2, "daily-2026-11-26")


def test_with_approval_required_runs_build_and_stop_until_the_edition_is_approved(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 2)
    required = {
        **env,
        "DIGEST_APPROVAL": "required",
        "DIGEST_SOURCES": "file",
        "DIGEST_PAPERS_FILE": str(_papers_file(tmp_path, 0, 5)),
    }
    key, outbox = "daily-2026-11-26", tmp_path / "outbox"
    first = invoke(required, "run", "--date", "2026-11-26")
    assert first.exit_code == 0, first.output
    assert "awaits approval" in first.output and f"`digest approve {key}`" in first.output
    assert not outbox.exists() and store.get_edition(key).status is EditionStatus.DRAFT
    assert store.recent_runs(1)[0]["outcome"] == "waiting"
    status = invoke(required, "status")
    assert f"AWAITING APPROVAL {key}" in status.output
    waiting = json.loads(invoke(required, "status", "--json").output)["awaiting_approval"]
    assert [w["key"] for w in waiting] == [key]
    refused = CliRunner().invoke(cli, ["send", "--edition", key], env=required)
    assert refused.exit_code == 1 and not outbox.exists()
    assert refused.output.strip().splitlines() == [
        f"error: edition {key} awaits approval (DIGEST_APPROVAL=required): look at it with "
        f"`digest preview --edition {key}`, then `digest approve {key}`"
    ]
    dry = invoke(required, "send", "--dry-run", "--edition", key)
    assert (
        dry.exit_code == 0
        and "would send 2 emails" in dry.output
        and "awaits approval" in dry.output
    )
    approved = invoke(required, "approve", key)
    assert approved.exit_code == 0 and f"approved {key} (5 papers)" in approved.output
    assert store.get_edition(key).approved_at is not None
    assert json.loads(invoke(required, "status", "--json").output)["awaiting_approval"] == []
    assert "AWAITING APPROVAL" not in invoke(required, "status").output
    second = invoke(required, "run", "--date", "2026-11-26")  # a catch-up run sends it now
    assert second.exit_code == 0 and handed(second.output, 2, key), second.output
    third = invoke(required, "run", "--date", "2026-11-26")
    assert handed(third.output, 0, key)
    assert sent_to(outbox, key) == ["reader0@example.com", "reader1@example.com"]
    assert invoke(required, "approve", key).output.startswith(f"{key} is sent already")


def test_approve_send_releases_and_sends_at_once_and_unknown_keys_are_one_line(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 3)
    required = {**env, "DIGEST_APPROVAL": "required"}
    assert invoke(env, "collect", "--file", str(_papers_file(tmp_path, 0, 4))).exit_code == 0
    assert invoke(required, "build", "--no-collect", "--date", "2026-11-26").exit_code == 0
    result = invoke(required, "approve", "daily-2026-11-26", "--send")
    assert result.exit_code == 0, result.output
    assert "approved daily-2026-11-26" in result.output and "outbox: 3," in result.output
    assert len(sent_to(tmp_path / "outbox", "daily-2026-11-26")) == 3
    unknown = CliRunner().invoke(cli, ["approve", "daily-1999-01-01"], env=env)
    assert unknown.exit_code == 1 and len(unknown.output.strip().splitlines()) == 1
    assert unknown.output.startswith("error: no edition 'daily-1999-01-01'")


def test_approve_without_a_key_takes_the_edition_send_would_send(
    env: dict[str, str], store: Store, tmp_path: Path
) -> None:
    add(store, 1)
    required = {**env, "DIGEST_APPROVAL": "required"}
    assert invoke(env, "collect", "--file", str(_papers_file(tmp_path, 0, 4))).exit_code == 0
    unbuilt = CliRunner().invoke(cli, ["approve"], env=required)
    assert unbuilt.exit_code == 1 and unbuilt.output.strip().splitlines() == [
        f"error: {today_key()} is not built yet: `digest build` builds it, `digest preview` "
        "shows it, then approve it"
    ]
    assert invoke(required, "build", "--no-collect").exit_code == 0
    approved = invoke(required, "approve")
    assert approved.exit_code == 0 and f"approved {today_key()} (4 papers)" in approved.output
    sent = invoke(required, "send")
    assert sent.exit_code == 0 and handed(sent.output, 1, today_key()), sent.output
