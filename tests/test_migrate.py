"""Any number of processes may start on an empty database at once: migrations take turns.

Reported: two processes starting on an empty database at once failed with
``UniqueViolation ... pg_type_typname_nsp_index`` (3 of 3 tries), and compose starts the
scheduler and the web app together. The same held for SQLite ("table editions already
exists"), where the systemd timer and the web unit can start together on a new machine.
PostgreSQL databases are throw-away ones on 127.0.0.1:5432.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from digest.store import Store
from tests.conftest import throwaway_postgres

# Imports digest first, then waits for the common start time, so the migrations really race.
MIGRATE = (
    "import sys, time\n"
    "from digest.store import Store\n"
    "store = Store(sys.argv[1])\n"
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "store.migrate()\n"
    "print(store.revision())\n"
)


@contextmanager
def empty_sqlite(folder: Path) -> Iterator[str]:
    """The URL of a SQLite file that does not exist yet."""
    yield f"sqlite:///{folder / 'digest.db'}"


@pytest.mark.parametrize("attempt", range(5))
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_processes_migrating_an_empty_database_at_once_both_succeed(
    kind: str, attempt: int, tmp_path: Path
) -> None:
    with (
        throwaway_postgres("digest_migrate")
        if kind == "postgresql"
        else empty_sqlite(tmp_path) as url
    ):
        start = time.time() + 2.5  # both have imported digest by then
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE, url, str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        for code, out, err in results:
            assert code == 0, err[-2000:]
        store = Store(url)
        head = store.revision()
        store.close()
        assert head and [out.strip() for _, out, _ in results] == [head, head]


def test_the_schema_head_the_store_knows_is_the_newest_migration(tmp_path: Path) -> None:
    # A database at SCHEMA_HEAD is not migrated again: a new migration must move it.
    from alembic.script import ScriptDirectory

    from digest.store.base import SCHEMA_HEAD, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == SCHEMA_HEAD
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    store.migrate()
    assert store.revision() == SCHEMA_HEAD
    store.migrate()  # at the head already: nothing to do, and nothing breaks
    assert store.revision() == SCHEMA_HEAD
    store.close()
