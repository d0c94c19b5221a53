"""Three `digest send --worker` processes share one edition on the real PostgreSQL.

Each claims batches with SELECT ... FOR UPDATE SKIP LOCKED; every one of 3,000 subscribers
gets exactly one message. Uses its own throw-away database on 127.0.0.1:5432 (``pg_url`` in conftest).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import sqlalchemy as sa

from digest.models import DeliveryStatus, EditionStatus, SubscriberStatus
from digest.store import Store, utcnow
from digest.store.schema import subscribers
from tests.smtpserver import ScriptedServer
from tests.test_delivery import make_edition
from tests.test_send_cli import DIGEST, TEST_ENV

READERS = 3000


def test_three_workers_deliver_each_of_3000_subscribers_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    store = Store(pg_url)
    store.migrate()
    edition = make_edition(store)
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            sa.insert(subscribers),
            [
                {"email": f"r{i}@example.com", "status": str(SubscriberStatus.ACTIVE),
                 "topics": [], "keywords": [], "frequency": "daily", "created_at": now,
                 "confirmed_at": now, "confirm_nonce": 0}
                for i in range(READERS)
            ],
        )  # fmt: skip
    with ScriptedServer() as server:
        env = {
            **os.environ,
            **TEST_ENV,
            "DIGEST_DATABASE_URL": pg_url,
            "DIGEST_TRANSPORT": "smtp",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SMTP_CONNECTIONS": "2",
        }
        workers = [
            subprocess.Popen(
                [*DIGEST, "send", "--worker", "--edition", edition.key],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(3)
        ]
        outputs = [w.communicate(timeout=240) for w in workers]
        counts = dict(server.handler.counts)

    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-2000:]
    shares = [int(re.search(r": sent (\d+),", out).group(1)) for out, _ in outputs]
    assert sum(shares) == READERS
    assert sum(1 for s in shares if s > 0) >= 2, f"one worker did everything: {shares}"
    assert len(counts) == READERS and set(counts.values()) == {1}
    assert store.delivery_counts(edition.id) == {str(DeliveryStatus.SENT): READERS}
    assert store.get_edition(edition.key).status is EditionStatus.SENT
    store.close()
