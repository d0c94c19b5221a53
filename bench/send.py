"""Benchmark: the whole `digest send` command against a plain asyncio SMTP client replaying the
very bytes digest sent, same sink process, same connections, all N messages, in one run.

    python bench/send.py                               # 20,000 subscribers, SQLite and PostgreSQL
    python bench/send.py --subscribers 5000 --repeat 3 --database sqlite
    python bench/send.py --same-content                # everyone gets the same selection
    python bench/send.py --subscribers 100000 --repeat 1   # peak RSS at that size

Set-up, not timed: a fresh database (an SQLite file, or a throw-away PostgreSQL database on
127.0.0.1:5432 that is dropped afterwards), `digest init`, `digest build` with the file source
(collects examples/papers.json and builds today's edition, on any day of the week), and N active subscribers who each follow 3 of
the taxonomy's 18 topics picked at random (seeded), so selections differ as on a real list;
--same-content gives everyone no topics (the whole edition).

digest's side: the installed `digest send --edition KEY` as a user runs it, with DIGEST_*
settings for SMTP to the sink (DIGEST_SMTP_SECURITY=none, DIGEST_SMTP_CONNECTIONS=C), timed
wall clock from spawn to exit: start-up, ledger, ranking, rendering and the wire. Its peak RSS
and CPU time come from wait4 on that one child.

The baseline: bench/smtp_replay.py in its own process replays the messages the sink recorded
from digest (the same envelopes and bytes), lock-step MAIL FROM, RCPT TO, DATA, each reply
awaited, payloads dot-stuffed before its clock, over the same number of connections.

The sink (bench/smtp_sink.py, aiosmtpd in its own process) serves both sides, counts what
each delivered, and writes every message to a spool on both sides alike (digest's is the one
replayed). Its ceiling is the same replay with MAIL, RCPT and DATA pipelined over four times
the connections. On this 2-core machine the sink is CPU-bound: lock-step over 1, 2, 4 or
16 connections and pipelined over 4 or 16 all came within noise of each other (about 230 msg/s
at 70 KiB under load), so the ceiling is close to the baseline and says the sink is the limit.

Runs alternate which side goes first; --repeat R gives medians with every run shown. The
ledger is emptied between digest runs (not timed), so each run sends all N messages.
Targets (issue 17): ratio >= 0.9 at 20,000 and 100,000; peak RSS <= 200 MB at 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import tomllib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from harness import ROOT, databases, digest_command, digest_env, median, run_timed, spread
from harness import throwaway_database as database

HERE = Path(__file__).resolve().parent
TOPICS_PER_SUBSCRIBER = 3
SENDER = "digest <digest@example.org>"


class Sink:
    """The sink process and its command channel (see bench/smtp_sink.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "smtp_sink.py"), "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        word, _, port = self.proc.stdout.readline().strip().partition(" ")
        if word != "ready":
            raise SystemExit("bench: the SMTP sink did not start")
        self.port = int(port)

    def command(self, line: str) -> dict:
        """Send one command, return its JSON answer."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def expect(self, messages: int, who: str, size: int | None = None) -> int:
        """Fail loudly unless the sink got ``messages`` (of ``size`` bytes in all, when given)
        since the last reset; returns the bytes it got."""
        stats = self.command("stats")
        if stats["messages"] != messages or size not in (None, stats["bytes"]):
            raise SystemExit(f"bench: the sink got {stats} from {who}, expected {messages} "
                             f"messages of {size} bytes")  # fmt: skip
        return stats["bytes"]

    def close(self) -> None:
        """Stop the sink process."""
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def settled() -> None:
    """Write the spools' dirty pages out before a side's clock starts: otherwise the kernel
    writes back the side before's gigabyte during the next side's run (seen: the side that
    went second lost up to 20%, whichever it was)."""
    os.sync()


def send_env(url: str, port: int, connections: int) -> dict[str, str]:
    """DIGEST_* settings of `digest send` to the sink, as a user would set them."""
    return digest_env(
        url, transport="smtp", smtp_host="127.0.0.1", smtp_port=str(port),
        smtp_security="none", smtp_connections=str(connections), **{"from": SENDER},
        base_url="https://digest.example.org",
    )  # fmt: skip


def taxonomy_topics() -> list[str]:
    """The topic names of the shipped taxonomy (the 18 of the subscribe page)."""
    text = resources.files("digest.data").joinpath("taxonomy.toml").read_text("utf-8")
    return [topic["name"] for topic in tomllib.loads(text)["topic"]]


def prepare(url: str, subscribers: int, same_content: bool, seed: int) -> str:
    """A database ready to send: papers, today's edition, subscribers. Returns the edition key.

    The edition comes from `digest build` (collect the example papers, build today's edition),
    so the benchmark needs no module of digest but the schema. Not `digest run`: it builds
    nothing before DIGEST_SCHEDULE's time (a weekend, or before 07:00 UTC).
    """
    import sqlalchemy as sa

    from digest.store.schema import subscribers as subscribers_table

    env = digest_env(url, transport="file", sources="file",
                     papers_file=str(ROOT / "examples" / "papers.json"))  # fmt: skip
    run_timed([digest_command(), "init"], env=env)
    run_timed([digest_command(), "build"], env=env)
    status = json.loads(run_timed([digest_command(), "status", "--json"], env=env).stdout)
    key = status["editions"][0]["key"]
    topics = taxonomy_topics()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    for start in range(0, subscribers, 5000):  # bulk: the benchmark is sending, not adding
        rows = [
            {"email": f"reader{i}@example.com", "status": "active",
             "topics": [] if same_content else rng.sample(topics, TOPICS_PER_SUBSCRIBER),
             "keywords": [], "frequency": "daily", "created_at": now, "confirmed_at": now,
             "confirm_nonce": 0}
            for i in range(start, min(subscribers, start + 5000))
        ]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(sa.insert(subscribers_table), rows)
    engine.dispose()
    return key


def reset_ledger(url: str, edition_key: str) -> None:
    """Forget the last send (not timed), so the next run sends every message again."""
    import sqlalchemy as sa

    from digest.store import schema  # the store is the one part this benchmark reads

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.deliveries))
        conn.execute(sa.delete(schema.runs))
        conn.execute(
            sa.update(schema.editions)
            .where(schema.editions.c.key == edition_key)
            .values(status="draft", sent_at=None)
        )
    if engine.dialect.name == "postgresql":  # no dead rows left for the next run to wade through
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE deliveries")
    engine.dispose()


def digest_side(sink: Sink, url: str, key: str, n: int, connections: int, spool: Path) -> dict:
    """One whole `digest send`, recorded by the sink into ``spool``."""
    sink.command(f"record {spool}")
    settled()
    timed = run_timed(
        [digest_command(), "send", "--edition", key], env=send_env(url, sink.port, connections)
    )
    if f"sent {n}," not in timed.stdout:
        raise SystemExit(f"bench: digest send did not send {n}: {timed.stdout}{timed.stderr}")
    size = sink.expect(n, "digest send")
    sink.command("count")  # closes the spool
    reset_ledger(url, key)
    return {"rate": n / timed.seconds, "seconds": timed.seconds, "rss": timed.rss_mb,
            "cpu_ms": timed.cpu_seconds * 1000 / n, "bytes": size}  # fmt: skip


def replay_side(
    sink: Sink, spool: Path, n: int, connections: int, pipeline: bool, size: int
) -> float:
    """Messages per second of the replay client (lock-step, or pipelined for the ceiling);
    the sink must get the very bytes it got from digest (``size`` in all).

    The sink records what it gets here too, to a scratch spool: writing each message (and the
    kernel's writeback of them) must load the sink alike on both sides.
    """
    sink.command(f"record {spool.with_name('replayed.bin')}")
    settled()
    cmd = [sys.executable, str(HERE / "smtp_replay.py"), str(sink.port), str(spool),
           "--connections", str(connections)] + (["--pipeline"] if pipeline else [])  # fmt: skip
    result = json.loads(run_timed(cmd).stdout.strip().splitlines()[-1])
    sink.expect(n, "the replay client", size)
    sink.command("count")  # closes the scratch spool
    return result["rate"]


def configuration(sink: Sink, kind: str, folder: Path, args: argparse.Namespace) -> list[dict]:
    """Every run of one database kind: digest, baseline and ceiling figures per run."""
    n, c = args.subscribers, args.connections
    spool = folder / "spool.bin"
    runs = []
    with database(kind, folder, "send") as url:
        key = prepare(url, n, args.same_content, args.seed)
        for i in range(args.repeat):
            # Alternate which side goes first (the first run must record digest's bytes).
            if i % 2 == 0:
                ours = digest_side(sink, url, key, n, c, spool)
                base = replay_side(sink, spool, n, c, False, ours["bytes"])
            else:
                base = replay_side(sink, spool, n, c, False, runs[-1]["bytes"])
                ours = digest_side(sink, url, key, n, c, spool)
            ceiling = replay_side(sink, spool, n, 4 * c, True, ours["bytes"])
            runs.append({**ours, "base": base, "ceiling": ceiling, "ratio": ours["rate"] / base})
            print(f"  {kind} run {i + 1}: digest {ours['rate']:,.0f} msg/s, baseline "
                  f"{base:,.0f} msg/s, ratio {ours['rate'] / base:.2f}, ceiling {ceiling:,.0f} "
                  f"msg/s, RSS {ours['rss']:,.0f} MB", flush=True)  # fmt: skip
    return runs


def report(kind: str, args: argparse.Namespace, runs: list[dict]) -> None:
    """Medians of one configuration, with every run after the colon."""
    content = "same content for everyone" if args.same_content else "3 random topics each"
    print(f"\n== {kind}: {args.subscribers:,} subscribers ({content}), {args.connections} "
          f"connections, {len(runs)} runs (medians; every run after the colon)")  # fmt: skip
    rows = [
        ("digest send", "rate", "{:,.0f} msg/s"),
        ("baseline (lock-step)", "base", "{:,.0f} msg/s"),
        ("ratio digest/baseline", "ratio", "{:.2f}"),
        ("sink ceiling", "ceiling", "{:,.0f} msg/s"),
        ("digest CPU per email", "cpu_ms", "{:.2f} ms"),
        ("digest peak RSS", "rss", "{:,.0f} MB"),
    ]
    for label, name, fmt in rows:
        values = [r[name] for r in runs]
        print(f"{label:22} {fmt.format(median(values)):>14}: {spread(values, fmt)}")
    print("targets: ratio >= 0.9 at 20,000 and 100,000; peak RSS <= 200 MB at 100,000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--same-content", action="store_true", help="no topics: one selection")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (medians)")
    parser.add_argument("--seed", type=int, default=17, help="seed of the topic picks")
    args = parser.parse_args()
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {kind: configuration(sink, kind, Path(tmp), args)
                       for kind in databases(args.database)}  # fmt: skip
    finally:
        sink.close()
    for kind, runs in results.items():
        report(kind, args, runs)


if __name__ == "__main__":
    main()
