"""`digest send` killed with SIGKILL at random points, then resumed: never a second copy.

A real `digest send` process, a real SQLite file, a real aiosmtpd server counting what it
accepts. After ten kills and a final run to completion, every subscriber has at most one
message, and exactly one unless the ledger says the outcome is unknown. Each kill leaves at
most 2 x connections rows whose outcome is unknown: per connection, one message in flight
and one sent whose ``sent`` mark was waiting for the ledger's next group commit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from digest.models import DeliveryStatus
from digest.store import Store
from tests.smtpserver import Script, ScriptedServer
from tests.test_delivery import add, make_edition
from tests.test_send_cli import DIGEST, TEST_ENV

SUBSCRIBERS = 150
TRIALS = 10
CONNECTIONS = 3


def test_sigkill_at_random_points_never_sends_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = Store(url)
    store.migrate()
    edition = make_edition(store)
    readers = add(store, SUBSCRIBERS)
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 10_000))
    print(f"rerun with CRASH_SEED={seed}")  # pytest shows it when the test fails
    rng = random.Random(seed)
    killed = 0
    with ScriptedServer(Script(delay=0.004)) as server:
        env = {
            **os.environ,
            **TEST_ENV,
            "DIGEST_DATABASE_URL": url,
            "DIGEST_TRANSPORT": "smtp",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SMTP_CONNECTIONS": str(CONNECTIONS),
        }

        def accepted() -> int:
            return sum(server.handler.counts.values())

        for _ in range(TRIALS):
            proc = subprocess.Popen(
                [*DIGEST, "send", "--edition", edition.key],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            start, target = accepted(), rng.randint(0, 8)
            deadline = time.monotonic() + 30
            if target == 0:  # somewhere in start-up, queueing or the first message
                # At most until the first message lands: a sleep alone could outlast the whole
                # send, and the trial would kill nothing.
                until = time.monotonic() + rng.uniform(0.2, 1.5)
                while time.monotonic() < until and accepted() == start and proc.poll() is None:
                    time.sleep(0.001)
            while accepted() < start + target and proc.poll() is None:
                assert time.monotonic() < deadline, "the sender made no progress"
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.01))  # land anywhere in the next message's life
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
            left = store.deliveries(edition.id, [DeliveryStatus.SENDING])
            assert len(left) <= 2 * CONNECTIONS, f"{len(left)} rows left in flight by one kill"
        final = subprocess.run(
            [*DIGEST, "send", "--edition", edition.key], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        counts = dict(server.handler.counts)

    assert killed >= TRIALS // 2, "the sender finished before most kills"
    ledger = {d.subscriber_id: d for d in store.deliveries(edition.id)}
    unknown = 0
    for reader in readers:
        got = counts.get(reader.email, 0)
        status = ledger[reader.id].status
        assert got <= 1, f"{reader.email} got {got} copies"
        if status is DeliveryStatus.UNKNOWN:
            unknown += 1
        else:
            assert (status, got) == (DeliveryStatus.SENT, 1), (reader.email, status, got)
    assert unknown <= 2 * CONNECTIONS * killed
    assert f"{edition.key}: sent" in final.stdout, final.stderr
    store.close()
