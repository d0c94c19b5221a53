"""`digest web` in its own process on a free port on 127.0.0.1, for tests that need the real app."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def digest_web(
    env: dict[str, str],
    cwd: Path,
    port: int | None = None,
    command: Sequence[str] = (sys.executable, "-c", "from digest.cli import main; main()"),
) -> Iterator[str]:
    """Run `digest web` (``command`` is how to call `digest`) until /healthz answers.

    Yields its base URL. Its output goes to ``cwd/web.log``; the process is ended when the
    block ends.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = cwd / "web.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [*command, "web", "--port", str(port)],
        env={**os.environ, **env, "DIGEST_BASE_URL": base},
        cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "digest web did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()  # only the process this helper started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
