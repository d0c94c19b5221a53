"""Shared pieces of the benchmarks: timed child processes, throw-away databases, medians.

Both sides of a benchmark run as whole processes timed the same way (wall clock from spawn to
exit), and each process's own peak RSS comes from wait4, not from the sum of all children.
"""

from __future__ import annotations

import compileall
import contextlib
import functools
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BENCH_SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"


@dataclass(frozen=True)
class Timed:
    """One finished child process: wall and CPU seconds, its own peak RSS (MB), its output."""

    seconds: float
    cpu_seconds: float
    rss_mb: float
    stdout: str
    stderr: str


@functools.cache
def _bytecode_written() -> None:
    """Write digest's bytecode once, as `pip install .` (and the image's build) does: with
    PYTHONDONTWRITEBYTECODE set, as in this workplace, an editable checkout would compile
    every module from source at each start, which no installed copy does (0.2-0.3 s)."""
    spec = importlib.util.find_spec("digest")
    if spec is not None and spec.origin:
        compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def digest_command() -> str:
    """The installed `digest` console script of this interpreter's environment (with its
    bytecode written, as an installed copy has it)."""
    _bytecode_written()
    beside = Path(sys.executable).with_name("digest")
    found = str(beside) if beside.exists() else shutil.which("digest")
    if not found:
        sys.exit("bench: the `digest` command is not installed here (pip install -e .)")
    return found


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None, check: bool = True) -> Timed:
    """Run ``cmd`` to the end; wall time from spawn to exit and the child's own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        timed = Timed(
            seconds, cpu, usage.ru_maxrss / 1024, out.read().decode(), err.read().decode()
        )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{timed.stderr[-2000:]}"
        )
    return timed


def digest_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment a user would give `digest`: DIGEST_* settings, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_DATABASE_URL=database_url, DIGEST_SECRET_KEY=BENCH_SECRET)
    env.update({f"DIGEST_{k.upper()}": v for k, v in settings.items()})
    return env


def postgres_reachable() -> str | None:
    """None when PostgreSQL at 127.0.0.1:5432 answers, else why not (one line)."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(f"{PG_SERVER}/postgres")
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure means: skip PostgreSQL, say why
        return str(exc).splitlines()[0][:200]
    return None


@contextlib.contextmanager
def throwaway_database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """A new empty database (SQLite file in ``folder`` or PostgreSQL), gone afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / name}.db{suffix}").unlink(missing_ok=True)
        return
    import sqlalchemy as sa

    db = f"digest_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    try:
        yield f"{PG_SERVER}/{db}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.dispose()


def databases(choice: str) -> list[str]:
    """The database kinds to run: sqlite, postgresql or both; PostgreSQL skipped if absent."""
    kinds = ["sqlite", "postgresql"] if choice == "both" else [choice]
    if "postgresql" in kinds and (why := postgres_reachable()):
        print(f"skipping PostgreSQL: 127.0.0.1:5432 is not reachable ({why})")
        kinds.remove("postgresql")
    return kinds


def median(values: Sequence[float]) -> float:
    """The median (the machine is noisy: medians, never means)."""
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """All runs of a figure, for the reader to judge the noise: ``1.20 / 1.31 / 1.25``."""
    return " / ".join(fmt.format(v) for v in values)
