"""Exit codes 0, 1 and 2 only, each failure one line: 2 for a setting or usage that will not fix
itself (systemd's RestartPreventExitStatus=2 stops a restart loop), 1 for a runtime failure
that may pass (a port another process holds, an unreachable server).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.conftest import TEST_SECRET
from tests.test_send_cli import DIGEST

ENV = {"DIGEST_SECRET_KEY": TEST_SECRET}


@pytest.fixture
def busy_port():
    """A port another process's socket is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _digest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The installed `digest` in its own process, as an admin runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env = clean | ENV | {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}"} | env
    return subprocess.run(
        [*DIGEST, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", [["web"], ["serve", "--web"]], ids=" ".join)
def test_a_busy_port_is_one_line_and_exit_1(
    tmp_path: Path, busy_port: int, command: list[str]
) -> None:
    """Reported: `web` on a busy port logged uvicorn's error and exited 3."""
    result = _digest(tmp_path, *command, DIGEST_WEB_PORT=str(busy_port))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{busy_port}: address already in use "
        "(DIGEST_WEB_HOST, DIGEST_WEB_PORT or --port)"
    ]


def test_preview_serve_on_a_busy_port_is_one_line_and_exit_1(busy_port: int) -> None:
    """Reported: `preview --serve` on a busy port printed a traceback."""
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    result = CliRunner().invoke(cli, ["preview", "--serve", "--port", str(busy_port)], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{busy_port}: address already in use (choose --port)"
    ]


@pytest.mark.parametrize("command", [["status"], ["init"], ["subscribers", "list"], ["web"]])
def test_a_database_url_at_a_file_that_is_no_database_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    """Reported: a DIGEST_DATABASE_URL pointing at a non-database file gave a traceback."""
    (tmp_path / "notes.txt").write_text("these are my notes, not a database\n" * 100)
    url = f"sqlite:///{tmp_path / 'notes.txt'}"
    result = CliRunner().invoke(cli, command, env={**ENV, "DIGEST_DATABASE_URL": url})
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: DIGEST_DATABASE_URL: {url} is not a database digest can use "
        "(file is not a database)"
    ]
    assert (tmp_path / "notes.txt").read_text().startswith("these are my notes")


def test_a_missing_template_is_one_line(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.txt").write_text("{% include '_signature.txt' %}\n")
    result = CliRunner().invoke(
        cli, ["preview"], env={**ENV, "DIGEST_TEMPLATES_DIR": str(tmp_path / "mine")}
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: template not found: _signature.txt"]


def test_a_file_that_cannot_be_written_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    (tmp_path / "taken").write_text("a file where a folder should be")
    result = CliRunner().invoke(cli, ["preview", "--out", "taken/preview.html"], env=ENV)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "taken" in line


def test_web_stops_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    """uvicorn raised SIGTERM again after stopping, so `digest web` ended with status 143."""
    import signal
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env = clean | ENV | {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}"}
    proc = subprocess.Popen(
        [*DIGEST, "web", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
