"""`digest collect` on a real SQLite file, with the file source and a real local HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from httpserver import ReplayServer, Reply

from digest.cli import cli
from digest.store import Store

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = ROOT / "examples" / "papers.json"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
LISTING = FIXTURES / "arxiv" / "cs.AI_2025-08-20.xml"
API_EMPTY = FIXTURES / "arxiv" / "id_0000.0000_s0_m100_8b51d9633a68.json"


@pytest.fixture
def replay_server():
    """A real HTTP server on 127.0.0.1 for this test (see tests/httpserver.py)."""
    with ReplayServer() as server:
        yield server


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    # Nothing may leave the machine: the arXiv API (asked for HF papers' categories too) is
    # pointed at a closed port unless a test replays it.
    return {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_ARXIV_CATEGORIES": "cs.AI",
        "DIGEST_ARXIV_API_URL": "http://127.0.0.1:9",
    }


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, ["collect", *args], env=env, catch_exceptions=False)


def _count(db_url: str) -> int:
    store = Store(db_url)
    try:
        return store.count_papers()
    finally:
        store.close()


def test_collect_file_twice_adds_nothing_the_second_time(env, db_url) -> None:
    first = _run(env, "--file", str(EXAMPLES))
    assert first.exit_code == 0, first.output
    count = _count(db_url)
    assert count >= 40
    assert f"file: fetched {count}, new {count}, merged 0, unchanged 0, skipped 0" in first.stdout
    store = Store(db_url)
    seen = store.get_paper("2410.17243").first_seen_at
    store.close()

    second = _run(env, "--file", str(EXAMPLES))
    assert second.exit_code == 0
    assert f"file: fetched {count}, new 0, merged 0, unchanged {count}, skipped 0" in second.stdout
    assert "nothing new: every paper fetched was already collected" in second.stdout
    store = Store(db_url)
    assert store.count_papers() == count
    assert store.get_paper("2410.17243").first_seen_at == seen  # "newly listed" is kept
    store.close()


@pytest.mark.parametrize(
    "content",
    [
        HF_2024.read_bytes()[:4000],  # truncated
        b"\xff\xfe not utf-8",
        b'{"papers": []}',
    ],
)
def test_malformed_file_is_one_line_nonzero_and_leaves_the_database(
    env, db_url, tmp_path: Path, content: bytes
) -> None:
    assert _run(env, "--file", str(HF_2024)).exit_code == 0
    before = _count(db_url)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = _run(env, "--file", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: file: failed: {bad}: ")
    assert "Traceback" not in result.output
    assert _count(db_url) == before


def test_bad_records_are_listed_and_the_rest_stored(env, db_url, tmp_path: Path) -> None:
    items = json.loads(HF_2024.read_text())[:3]
    items[1]["paper"]["id"] = "hello"
    items.append(items[0])
    path = tmp_path / "some.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    result = _run(env, "--file", str(path))
    assert result.exit_code == 0
    assert "file: fetched 4, new 2, merged 0, unchanged 0, skipped 2" in result.stdout
    assert "  skipped #1 (hello): paper.id: not an arXiv id: 'hello'" in result.stdout
    assert "  skipped #3 (2410.17243): duplicate of #0 (2410.17243)" in result.stdout
    assert _count(db_url) == 2


def test_one_failing_source_spares_the_others(env, db_url, replay_server: ReplayServer) -> None:
    replay_server.route("/api/daily_papers", Reply.file(HF_2024))
    replay_server.route("/atom/cs.AI", Reply(503, b"down"))
    env = {
        **env,
        "DIGEST_HF_BASE_URL": replay_server.url,
        "DIGEST_ARXIV_FEED_URL": replay_server.url,
        "DIGEST_HTTP_RETRIES": "0",
    }
    result = _run(env, "--source", "arxiv", "--source", "hf", "--date", "2024-10-25")
    assert result.exit_code == 0  # partial data still makes an edition; the failure is shown
    assert "hf: fetched 29, new 29" in result.stdout
    assert result.stderr.startswith("error: arxiv: failed: GET http://127.0.0.1:")
    assert "HTTP 503 Service Unavailable after 1 attempt" in result.stderr
    assert _count(db_url) == 29
    assert replay_server.hits("/api/daily_papers")[0].query["date"] == ["2024-10-25"]


def test_every_source_failing_exits_nonzero(env, replay_server: ReplayServer) -> None:
    # Retry-After: 0 keeps the one retry instant (the CLI has no test hook for the backoff).
    replay_server.route("/api/daily_papers", Reply(500, headers={"Retry-After": "0"}))
    env = {**env, "DIGEST_HF_BASE_URL": replay_server.url, "DIGEST_HTTP_RETRIES": "1"}
    result = _run(env, "--source", "hf")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("HTTP 500 Internal Server Error after 2 attempts")


def test_sources_default_to_the_setting(env, db_url, replay_server: ReplayServer) -> None:
    replay_server.route("/atom/cs.AI", Reply.file(LISTING))
    replay_server.route("/api/query", Reply.recorded(API_EMPTY))
    env = {
        **env,
        "DIGEST_SOURCES": "arxiv",
        "DIGEST_ARXIV_FEED_URL": replay_server.url,
        "DIGEST_ARXIV_API_URL": replay_server.url,
    }
    first = _run(env)
    assert "arxiv: fetched 2, new 2, merged 0, unchanged 0, skipped 0" in first.stdout
    second = _run(env)
    assert "arxiv: fetched 2, new 0, merged 0, unchanged 2" in second.stdout
    assert _count(db_url) == 2


def test_an_empty_day_says_so_plainly(env, replay_server: ReplayServer) -> None:
    replay_server.route("/api/daily_papers", Reply.json([]))
    env = {**env, "DIGEST_HF_BASE_URL": replay_server.url}
    result = _run(env, "--source", "hf", "--date", "2024-10-26")
    assert result.exit_code == 0
    assert "nothing new: the sources listed no papers" in result.stdout


def test_usage_mistakes_are_one_line(env, tmp_path: Path) -> None:
    bad_date = CliRunner().invoke(cli, ["collect", "--date", "26/11/2026"], env=env)
    assert bad_date.exit_code == 2 and "expected YYYY-MM-DD" in bad_date.stderr
    missing = _run(env, "--file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "no such papers file" in missing.stderr
    wrong = _run(env, "--source", "hf", "--file", str(EXAMPLES))
    assert (
        wrong.exit_code == 1
        and wrong.stderr == "error: --file is for the file source: add --source file\n"
    )
    no_file = _run({**env, "DIGEST_SOURCES": "file"})
    assert no_file.exit_code == 1 and "DIGEST_PAPERS_FILE" in no_file.stderr


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["collect", "--help"])
    assert result.exit_code == 0
    assert "digest collect --file examples/papers.json" in result.output
    assert "--source [hf|arxiv|file]" in result.output


def test_malformed_file_in_a_real_process_prints_exactly_one_line(db_url, tmp_path: Path) -> None:
    # CliRunner shares pytest's logging set-up; a real process shows what a user sees on stderr.
    bad = tmp_path / "bad.json"
    bad.write_bytes(HF_2024.read_bytes()[:4000])
    env = {**os.environ, "DIGEST_DATABASE_URL": db_url}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from digest.cli import main; main()",
            "collect",
            "--file",
            str(bad),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: file: failed: {bad}: not valid JSON: ")
