"""Benchmark: digest's send loop against a raw aiosmtplib baseline, side by side in one run.

    python bench/send.py                       # 20,000 subscribers, 8 topic mixes
    python bench/send.py --subscribers 100000  # also shows peak RSS at that size

An aiosmtpd sink runs in a separate process. Prints the median CPU per email for render +
build, digest's send rate (ledger, rate checks, rendering and all), the rate of a raw
baseline that sends the same pre-built bytes over the same number of aiosmtplib connections,
their ratio, and the peak RSS of the sending process. Run by hand, never from tests.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from digest.config import load_settings  # noqa: E402
from digest.models import Frequency, SubscriberStatus  # noqa: E402
from digest.store import Store, utcnow  # noqa: E402
from digest.store.schema import subscribers as subscribers_table  # noqa: E402

SINK = """
import sys, time
from aiosmtpd.controller import Controller
class Sink:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.count += 1
        return "250 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), ready_timeout=30)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
print(Sink.count, flush=True)
"""


def start_sink(port: int) -> subprocess.Popen:
    """The aiosmtpd sink, in its own process so its CPU is not ours."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _modules():
    from digest.themes import rank, taxonomy

    return rank, taxonomy


def setup(store: Store, settings, n: int, mixes: int):
    """Papers from examples/papers.json, today's edition, and n subscribers in ``mixes`` mixes."""
    rank, taxonomy_mod = _modules()
    from digest.pipeline import build_edition
    from digest.sources.jsonfile import load_papers

    taxonomy = taxonomy_mod.load_taxonomy(settings.taxonomy_file)
    store.upsert_papers(load_papers(ROOT / "examples" / "papers.json").papers)
    edition, _ = build_edition(store, settings, Frequency.DAILY, date.today())
    topics = list(getattr(taxonomy, "topics", None) or ["llm", "vision", "robotics", "audio"])
    combos = [list(c) for c in itertools.combinations(topics, 2)][:mixes]
    while len(combos) < mixes:
        combos.append([])
    now = utcnow()
    for start in range(0, n, 5000):  # bulk insert: the benchmark is about sending, not adding
        rows = [
            {"email": f"reader{i}@example.com", "status": str(SubscriberStatus.ACTIVE),
             "topics": combos[i % mixes], "keywords": [], "frequency": "daily",
             "created_at": now, "confirmed_at": now, "confirm_nonce": 0}
            for i in range(start, min(n, start + 5000))
        ]  # fmt: skip
        with store.transaction() as conn:
            conn.execute(sa.insert(subscribers_table), rows)
    return edition, taxonomy, rank


def render_cost(store, edition, settings, taxonomy, rank, total: int, sample: int = 2000):
    """Median CPU per email (ms): its own build plus its share of the per-content renders.

    Each distinct content is rendered once for all ``total`` subscribers, so that is the share.
    """
    from digest.mail.render import Renderer

    renderer = Renderer(settings)
    prepared, render_cpu = {}, 0.0
    per_email = []
    subs = list(itertools.islice(store.iter_active_subscribers(), sample))
    for sub in subs:
        key = rank.selection_key(sub)
        if key not in prepared:
            t = time.process_time()
            selection = rank.select(
                edition, sub, taxonomy=taxonomy, default_max=settings.max_papers,
                now=edition.created_at,
            )  # fmt: skip
            prepared[key] = renderer.prepare_digest(edition, selection)
            render_cpu += time.process_time() - t
        t = time.process_time_ns()
        prepared[key].for_subscriber(sub)
        per_email.append((time.process_time_ns() - t) / 1e6)
    amortized = render_cpu * 1000 / total
    size = statistics.mean(len(m.for_subscriber(subs[0]).raw) for m in prepared.values())
    return statistics.median(per_email) + amortized, amortized, len(prepared), size, renderer


async def raw_baseline(port: int, connections: int, messages: list[bytes], n: int) -> float:
    """Messages per second sending pre-built bytes with plain aiosmtplib, same connections."""
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        for _ in range(connections)
    ]
    for c in clients:
        await c.connect()
    counter = itertools.count()

    async def pump(client: aiosmtplib.SMTP) -> None:
        while (i := next(counter)) < n:
            await client.sendmail(
                "bounce@example.org", [f"reader{i}@example.com"], messages[i % len(messages)]
            )

    start = time.perf_counter()
    await asyncio.gather(*(pump(c) for c in clients))
    elapsed = time.perf_counter() - start
    for c in clients:
        await c.quit()
    return n / elapsed


SENDER = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from digest.config import load_settings
from digest.delivery import send_edition
from digest.store import Store
settings = load_settings()
store = Store(settings.database_url)
edition = store.get_edition(sys.argv[2])
start = time.perf_counter()
report = send_edition(store, edition, settings)
elapsed = time.perf_counter() - start
print(json.dumps({"rate": report.sent / elapsed, "summary": report.summary(),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def digest_send(settings, edition_key: str) -> dict:
    """digest.delivery in a fresh process, as `digest send` runs: its rate and peak RSS."""
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SECRET_KEY": settings.secret_key,
        "DIGEST_BASE_URL": str(settings.base_url),
        "DIGEST_FROM": settings.sender,
        "DIGEST_TRANSPORT": "smtp",
        "DIGEST_SMTP_HOST": settings.smtp_host,
        "DIGEST_SMTP_PORT": str(settings.smtp_port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": str(settings.smtp_connections),
    }
    out = subprocess.run(
        [sys.executable, "-c", SENDER, str(ROOT), edition_key],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--mixes", type=int, default=8, help="distinct topic mixes")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline-messages", type=int, default=None, help="default: min(N, 5000)")
    args = parser.parse_args()

    port = free_port()
    sink = start_sink(port)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        settings = load_settings(
            database_url=f"sqlite:///{tmp}/bench.db",
            secret_key="bench-secret-key-0123456789-abcdefghijklmnop",
            base_url="https://digest.example.org",
            sender="digest <digest@example.org>",
            transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_connections=args.connections,
        )
        store = Store(settings.database_url)
        store.migrate()
        edition, taxonomy, rank = setup(store, settings, args.subscribers, args.mixes)
        cpu_ms, amortized, contents, size, renderer = render_cost(
            store, edition, settings, taxonomy, rank, args.subscribers
        )
        # The baseline's bytes: one finished message per distinct content, built beforehand.
        prebuilt, seen = [], set()
        for sub in itertools.islice(store.iter_active_subscribers(), 2000):
            key = rank.selection_key(sub)
            if key not in seen:
                seen.add(key)
                selection = rank.select(edition, sub, taxonomy=taxonomy,
                                        default_max=settings.max_papers, now=edition.created_at)  # fmt: skip
                prebuilt.append(renderer.prepare_digest(edition, selection).for_subscriber(sub).raw)
        n_base = args.baseline_messages or min(args.subscribers, 5000)
        base1 = asyncio.run(raw_baseline(port, args.connections, prebuilt, n_base))
        sent = digest_send(settings, edition.key)
        rate = sent["rate"]
        base2 = asyncio.run(raw_baseline(port, args.connections, prebuilt, n_base))
        baseline = (base1 + base2) / 2
        store.close()
    sink.stdin.close()
    sink.wait(timeout=30)

    print(f"subscribers              {args.subscribers:,} ({contents} distinct contents, "
          f"~{size / 1024:.0f} KiB each)")  # fmt: skip
    print(f"render + build CPU/email {cpu_ms:.3f} ms median (render share {amortized:.3f} ms)")
    print(f"digest send rate         {rate:,.0f} msg/s ({sent['summary']})")
    print(f"raw aiosmtplib baseline  {baseline:,.0f} msg/s ({base1:,.0f} before, {base2:,.0f} after;"
          f" {args.connections} connections, same bytes)")  # fmt: skip
    print(f"ratio digest/baseline    {rate / baseline:.2f}  (target >= 0.9)")
    print(f"peak RSS of the sender   {sent['rss_mb']:,.0f} MB at {args.subscribers:,} subscribers"
          "  (target <= 200 MB at 100,000)")  # fmt: skip


if __name__ == "__main__":
    main()
