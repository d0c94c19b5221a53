"""Benchmark: peak memory (RSS) of the whole job at scale, each command as a user runs it.

    python bench/rss.py                                   # 10,000 papers, 1,000 subscribers
    python bench/rss.py --papers 20000 --subscribers 5000

In a fresh folder with a SQLite file: `digest subscribers import`, `digest collect --file`
(10,000 papers) and `digest send` (builds today's edition from all of them, groups them by
theme, sends to every subscriber over SMTP to an aiosmtpd sink in its own process); then the
whole job as one process, `digest run`, on a second database. Each command is a separate
process; its peak RSS comes from the kernel (wait4's ru_maxrss). The papers are the recorded
HF ones re-mixed: real sentences plus words in new orders, so a batch holds about as many
distinct phrases as real abstracts do (theme labelling's memory grows with them).
Baseline, measured in the same run: the simple script a sceptic would write for the same
job -- json.load the papers file, sort by upvotes, build each subscriber's email of the top
30 with email.message.EmailMessage and send it with smtplib over one connection. Run by
hand, never from tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from send import Sink  # noqa: E402 - the sink of bench/send.py

DIGEST = [sys.executable, "-c", "from digest.cli import main; main()"]
SECRET = "bench-secret-0123456789-abcdefghijklmnop"

BASELINE = r"""
import json, smtplib, sys, csv
from email.message import EmailMessage
papers = json.load(open(sys.argv[1]))
top = sorted(papers, key=lambda p: -p["paper"]["upvotes"])[:30]
people = [row["email"] for row in csv.DictReader(open(sys.argv[2]))]
with smtplib.SMTP("127.0.0.1", int(sys.argv[3])) as smtp:
    for address in people:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "digest@example.org", address, "Trending papers"
        body = "\n\n".join(f"{p['paper']['title']}\n{p['paper']['summary']}" for p in top)
        msg.set_content(body)
        msg.add_alternative("".join(f"<h2>{p['paper']['title']}</h2><p>{p['paper']['summary']}</p>" for p in top), subtype="html")
        smtp.send_message(msg)
"""


def make_papers(n: int, path: Path) -> None:
    """``n`` HF daily-papers items: the recorded ones, re-mixed into new titles and abstracts."""
    recorded = json.loads(
        (ROOT / "tests" / "fixtures" / "hf_daily_papers_2024-10-25.json").read_text()
    )
    recorded += json.loads(
        (ROOT / "tests" / "fixtures" / "hf_daily_papers_recent.json").read_text()
    )
    rng = random.Random(7)
    sentences = [s for item in recorded for s in item["paper"]["summary"].split(". ") if s]
    words = sorted({w for s in sentences for w in s.split()})
    items = []
    for i in range(n):
        base = recorded[i % len(recorded)]
        paper = dict(base["paper"])
        paper["id"] = f"{2400 + i // 90000}.{10000 + i % 90000:05d}"
        paper["title"] = f"{' '.join(rng.sample(words, 3))} {base['paper']['title']} ({i})"
        # Real sentences, plus words in new orders: as many distinct phrases as real abstracts.
        mixed = [" ".join(rng.sample(words, 12)) for _ in range(6)]
        paper["summary"] = ". ".join(rng.sample(sentences, 5) + mixed) + "."
        paper["upvotes"] = rng.randint(0, 300)
        items.append({**base, "paper": paper, "title": paper["title"]})
    path.write_text(json.dumps(items))


def make_people(n: int, path: Path) -> None:
    """``n`` subscribers in a few mixes of topics and keywords (distinct selections)."""
    mixes = [("", ""), ("Language models", ""), ("Computer vision", "diffusion"),
             ("", "agents;reasoning"), ("Robotics", ""), ("", "benchmark")]  # fmt: skip
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "topics", "keywords"])
        for i in range(n):
            out.writerow([f"reader{i}@example.com", *mixes[i % len(mixes)]])


def measure(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run one command; (peak RSS in MB, seconds, its last output line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(args[3:])} failed:\n{out[-3000:]}")
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith("ts=")]
    return usage.ru_maxrss / 1024, time.perf_counter() - start, (lines[-1] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=1_000)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-rss-"))
    papers, people = work / "papers.json", work / "people.csv"
    make_papers(opts.papers, papers)
    make_people(opts.subscribers, people)
    sink = Sink()
    port = sink.port
    env = {
        **os.environ, "DIGEST_DATABASE_URL": f"sqlite:///{work / 'digest.db'}",
        "DIGEST_SECRET_KEY": SECRET, "DIGEST_FROM": "digest <digest@example.org>",
        "DIGEST_TRANSPORT": "smtp", "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port), "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_LOG_LEVEL": "WARNING", "DIGEST_BASE_URL": "https://digest.example.org",
    }  # fmt: skip
    rows = []
    try:
        for label, command in (
            ("subscribers import", ["subscribers", "import", str(people)]),
            ("collect --file", ["collect", "--file", str(papers)]),
            ("send (build + send)", ["send"]),
        ):
            rows.append((label, *measure([*DIGEST, *command], env, work)))
        # The same job as one process, on a second database: `digest run` from the file source.
        once = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{work / 'run.db'}",
                "DIGEST_SOURCES": "file", "DIGEST_PAPERS_FILE": str(papers)}  # fmt: skip
        measure([*DIGEST, "subscribers", "import", str(people)], once, work)
        today = ["--date", time.strftime("%Y-%m-%d", time.gmtime())]  # build now, not at 07:00
        rows.append(("run (collect+build+send)", *measure([*DIGEST, "run", *today], once, work)))
        base = measure(
            [sys.executable, "-c", BASELINE, str(papers), str(people), str(port)], env, work
        )
    finally:
        sink.close()
    print(f"{opts.papers:,} papers, {opts.subscribers:,} subscribers, SQLite, SMTP to a local sink")
    for label, rss, seconds, line in rows:
        print(f"  digest {label:<24} peak RSS {rss:6.0f} MB  {seconds:6.1f} s  {line[:70]}")
    print(f"  baseline (json + smtplib)       peak RSS {base[0]:6.0f} MB  {base[1]:6.1f} s")
    peak = max(r[1] for r in rows)
    print(f"  ratio: digest's largest command / baseline = {peak / base[0]:.1f}x; "
          f"target <= 400 MB: {'met' if peak <= 400 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
