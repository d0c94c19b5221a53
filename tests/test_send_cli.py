"""`digest send` as an admin runs it: against a real SQLite file, outbox and SMTP server."""

from __future__ import annotations

import email
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.cli.progress import LogProgress
from digest.models import DeliveryStatus
from digest.store import Store
from tests.conftest import TEST_SECRET
from tests.smtpserver import Script, ScriptedServer
from tests.test_delivery import add, make_edition

# The installed console script, as an admin runs it (falls back to the module in odd setups).
_SCRIPT = Path(sys.executable).with_name("digest")
DIGEST = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from digest.cli import main; main()"]
)
TEST_ENV = {
    "DIGEST_SECRET_KEY": TEST_SECRET,
    "DIGEST_BASE_URL": "https://digest.example.org",
    "DIGEST_FROM": "digest <digest@example.org>",
}


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return {**TEST_ENV, "DIGEST_DATABASE_URL": db_url, "DIGEST_OUTBOX": str(tmp_path / "outbox")}


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, ["send", *args], env=env, catch_exceptions=False)


def test_send_twice_sends_once(store: Store, env: dict[str, str], tmp_path: Path) -> None:
    edition = make_edition(store)
    add(store, 3)
    first = run(env)
    second = run(env)
    assert first.exit_code == 0, first.output
    outbox = tmp_path / "outbox"
    assert f"{edition.key}: written to {outbox}: 3, deferred 0, failed 0, unknown 0" in first.output
    assert second.exit_code == 0 and f"{edition.key}: written to {outbox}: 0," in second.output
    files = sorted((tmp_path / "outbox" / edition.key).glob("*.eml"))
    assert len(files) == 3
    recipients = {email.message_from_bytes(f.read_bytes())["To"] for f in files}
    assert recipients == {f"reader{i}@example.com" for i in range(3)}
    assert [r["outcome"] for r in store.recent_runs(2)] == ["ok", "ok"]


def test_send_builds_todays_edition_when_there_is_none(
    store: Store, env: dict[str, str], tmp_path: Path
) -> None:
    from digest.sources.jsonfile import load_papers

    root = Path(__file__).resolve().parent.parent
    store.upsert_papers(load_papers(root / "examples" / "papers.json").papers)
    add(store, 2)
    result = run(env)
    assert result.exit_code == 0, result.output
    key = f"daily-{date.today().isoformat()}"
    assert f"{key}: written to {tmp_path / 'outbox'}: 2" in result.output
    assert len(list((tmp_path / "outbox" / key).glob("*.eml"))) == 2


def test_dry_run_sends_nothing(store: Store, env: dict[str, str], tmp_path: Path) -> None:
    make_edition(store)
    add(store, 4)
    result = run(env, "--dry-run")
    assert result.exit_code == 0 and "would send 4 emails" in result.output
    assert not (tmp_path / "outbox").exists()


def test_paused_run_exits_non_zero_with_one_clear_line(store: Store, env: dict[str, str]) -> None:
    edition = make_edition(store)
    add(store, 5)
    with ScriptedServer(auth=("mailer", "right")) as server:
        smtp = {
            **env,
            "DIGEST_TRANSPORT": "smtp",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SMTP_USERNAME": "mailer",
            "DIGEST_SMTP_PASSWORD": "wrong",
            "DIGEST_SMTP_CONNECTIONS": "1",
        }
        result = CliRunner().invoke(cli, ["send"], env=smtp)
    assert result.exit_code == 1
    assert "error: sending paused: 3 connection failures in a row" in result.output
    assert "535" in result.output and "Traceback" not in result.output
    assert store.recent_runs(1)[0]["outcome"] == "paused"
    assert {d.status for d in store.deliveries(edition.id)} == {DeliveryStatus.QUEUED}


def test_unknown_outcome_exits_non_zero_and_says_how_to_resend(
    store: Store, env: dict[str, str]
) -> None:
    make_edition(store)
    (lost,) = add(store, 1)
    with ScriptedServer(Script(data={lost.email: "disconnect"})) as server:
        smtp = {
            **env,
            "DIGEST_TRANSPORT": "smtp",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_SMTP_SECURITY": "none",
        }
        result = CliRunner().invoke(cli, ["send"], env=smtp)
        assert result.exit_code == 1 and "unknown 1" in result.output
        key = "daily-2026-11-26"
        line = f"error: 1 delivery has an unknown outcome ({key}: 1)"
        assert line in result.output
        assert f"digest send --edition {key} --retry-unknown" in result.output
        # Until an admin resolves it, every send says so and exits 1, though nothing failed now.
        again = CliRunner().invoke(cli, ["send"], env=smtp)
        assert again.exit_code == 1 and "unknown 0" in again.output and line in again.output
        server.handler.script.data.clear()
        retried = CliRunner().invoke(cli, ["send", "--retry-unknown"], env=smtp)
    assert retried.exit_code == 0 and "sent 1" in retried.output
    assert server.handler.counts == {lost.email: 1}


def test_worker_mode_needs_postgresql(store: Store, env: dict[str, str]) -> None:
    make_edition(store)
    result = CliRunner().invoke(cli, ["send", "--worker"], env=env)
    assert result.exit_code == 1 and "needs PostgreSQL" in result.output


def test_unknown_edition_is_one_line(store: Store, env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["send", "--edition", "daily-1999-01-01"], env=env)
    assert result.exit_code == 1 and "no edition 'daily-1999-01-01'" in result.output


def test_log_progress_writes_a_line_with_rate_and_eta(capsys: pytest.CaptureFixture) -> None:
    progress = LogProgress(every=0)
    progress.start(10)
    progress.advance(DeliveryStatus.SENT)
    line = capsys.readouterr().err
    assert "send.progress done=1 total=10" in line and "rate=" in line and "eta=" in line
