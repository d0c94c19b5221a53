"""Benchmark: `digest collect --file` of 10,000 papers, new and then all known, against a
plain INSERT of the same rows and search words into the same schema, side by side in one run.

    python bench/collect.py                          # SQLite and PostgreSQL, 3 runs, medians
    python bench/collect.py --papers 10000 --database sqlite --repeat 5

The papers file is the labelled dev file (../shared/eval/arxiv_topics_dev.jsonl, 3,360 real
arXiv papers) replicated with new ids up to --papers rows, as JSON Lines.

digest's side is the whole command a user runs, start-up included, on a database made with
`digest init` beforehand: first every paper is new, then the same file again (all known).
The baseline is what a sceptic would write instead: one Python process that reads the file
with json, makes each paper's search words with one regex, and INSERTs the rows (sqlite3 or
psycopg, the same drivers digest uses) into the same migrated schema, so the full-text index
(FTS5 or GIN) takes as many words as digest's (each word once, as digest's): on SQLite 1,000
rows a statement (FTS5 pays per statement: row by row was 2.5x slower), on PostgreSQL one COPY
fed as the file is read (a pipelined executemany of the same rows took 2.1 s, this COPY 1.5 s);
the second time, when every paper is known, INSERT ... ON CONFLICT (arxiv_id) DO NOTHING (a
COPY cannot skip known rows). It does not clean text, validate ids, merge sources or report
what changed, so it is a floor.

Also printed, measured in-process (one child): importing what `digest collect` imports,
parsing the file, and the store's upsert_papers for new and for known papers, so start-up,
parsing and the database can be told apart. Targets (issue 17): new < 2 s, known < 1 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness import ROOT, databases, digest_command, digest_env, median, run_timed, spread
from harness import throwaway_database as database

# shared/ sits beside the checkout (or beside the folder of worktrees that holds it).
DEV_FILE = next(
    (p / "shared" / "eval" / "arxiv_topics_dev.jsonl" for p in ROOT.parents
     if (p / "shared" / "eval" / "arxiv_topics_dev.jsonl").exists()),
    ROOT.parent / "shared" / "eval" / "arxiv_topics_dev.jsonl",
)  # fmt: skip

BASELINE = r"""
import datetime, json, re, sys
kind, url, path = sys.argv[1:4]
known = len(sys.argv) > 4  # the second time: every paper is already stored
now = datetime.datetime.now(datetime.UTC)
word = re.compile(r"[^\W_]+")
columns = ("arxiv_id, title, abstract, authors, listed_at, categories, sources, "
           "first_seen_at, updated_at, search_text, upvotes, comments, keywords")

def rows():
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            # The words a search finds the paper by, so the database indexes as many as digest's.
            text = f"{r['title']} {r.get('abstract', '')}".lower()
            words = " ".join(dict.fromkeys(word.findall(text)))
            yield (r["id"], r["title"], r.get("abstract", ""), json.dumps(r.get("authors", [])),
                   r.get("date"), json.dumps(r.get("categories", [])), '["file"]', now, now,
                   words, 0, 0, "[]")

n = 0
if kind == "sqlite":  # 1,000 rows a statement: FTS5 pays per statement, not per row
    import sqlite3
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    all_rows = [r[:7] + (r[7].isoformat(sep=" "), r[8].isoformat(sep=" ")) + r[9:] for r in rows()]
    insert = f"INSERT INTO papers ({columns}) VALUES {{}} ON CONFLICT (arxiv_id) DO NOTHING"
    row = "(" + ", ".join(["?"] * 13) + ")"
    for start in range(0, len(all_rows), 1000):
        chunk = all_rows[start:start + 1000]
        conn.execute(insert.format(", ".join([row] * len(chunk))), [v for r in chunk for v in r])
    n = len(all_rows)
else:
    import psycopg
    conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
    if known:  # COPY cannot skip stored rows: a pipelined executemany that skips them
        insert = f"INSERT INTO papers ({columns}) VALUES ({', '.join(['%s'] * 13)}) "
        all_rows = list(rows())
        conn.cursor().executemany(insert + "ON CONFLICT (arxiv_id) DO NOTHING", all_rows)
        n = len(all_rows)
    else:  # one COPY, each row sent as it is read
        with conn.cursor().copy(f"COPY papers ({columns}) FROM STDIN") as copy:
            for r in rows():
                copy.write_row(r)
                n += 1
conn.commit()
print(n)
"""

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import digest.cli, digest.cli.collect, digest.pipeline
from digest.sources.jsonfile import load_papers
from digest.store import Store
t1 = time.perf_counter()
papers = load_papers(sys.argv[2]).papers
t2 = time.perf_counter()
store = Store(sys.argv[1])
new = store.upsert_papers(papers)
t3 = time.perf_counter()
known = store.upsert_papers(papers)
t4 = time.perf_counter()
assert len(new.new) == len(known.unchanged) == len(papers)
print(json.dumps({"import": t1 - t0, "parse": t2 - t1, "store_new": t3 - t2, "store_known": t4 - t3}))
"""


def make_papers_file(n: int, folder: Path, source: Path) -> Path:
    """``n`` JSON Lines papers: the dev file's rows over and over, each with a new arXiv id."""
    if not source.exists():
        raise SystemExit(f"bench: {source} is missing (the labelled dev file of ../shared/eval)")
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line]
    path = folder / f"papers-{n}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            row = dict(rows[i % len(rows)])
            row["id"] = (
                f"{2701 + i // 99_999}.{i % 99_999:05d}"  # new, valid, never in the dev file
            )
            out.write(json.dumps(row) + "\n")
    return path


def init(url: str) -> None:
    """The schema, made by `digest init` before any clock runs."""
    run_timed([digest_command(), "init"], env=digest_env(url))


def digest_round(kind: str, folder: Path, papers: Path, n: int) -> dict[str, float]:
    """`digest collect --file` twice on a fresh database: all new, then all known."""
    with database(kind, folder, "digest") as url:
        init(url)
        cmd = [digest_command(), "collect", "--file", str(papers)]
        new = run_timed(cmd, env=digest_env(url))
        known = run_timed(cmd, env=digest_env(url))
    assert f"new {n}," in new.stdout and f"unchanged {n}," in known.stdout, known.stdout
    return {"new": new.seconds, "known": known.seconds, "rss": max(new.rss_mb, known.rss_mb),
            "new_cpu": new.cpu_seconds, "known_cpu": known.cpu_seconds}  # fmt: skip


def baseline_round(kind: str, folder: Path, papers: Path, n: int) -> dict[str, float]:
    """The plain executemany INSERT, twice on a fresh database of the same schema."""
    import sys

    with database(kind, folder, "baseline") as url:
        init(url)
        cmd = [sys.executable, "-c", BASELINE, kind, url, str(papers)]
        new = run_timed(cmd)
        known = run_timed([*cmd, "known"])
    assert new.stdout.strip() == str(n)
    return {"new": new.seconds, "known": known.seconds}


def phases(kind: str, folder: Path, papers: Path) -> dict[str, float]:
    """Import, parse and store times of digest's collect path, measured inside one process."""
    import sys

    with database(kind, folder, "phases") as url:
        init(url)
        out = run_timed([sys.executable, "-c", PHASES, url, str(papers)]).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(kind: str, n: int, runs: list[dict], bases: list[dict], parts: list[dict]) -> None:
    """Medians (and every run) of one database's figures."""
    print(f"\n== {kind}: {n:,} papers, {len(runs)} runs (medians; every run after the colon)")
    for case, target in (("new", 2.0), ("known", 1.0)):
        ours, base = [r[case] for r in runs], [b[case] for b in bases]
        ok = "meets" if median(ours) < target else "MISSES"
        print(f"collect {case:5}  digest {median(ours):5.2f} s: {spread(ours)}"
              f"   baseline {median(base):5.2f} s: {spread(base)}"
              f"   ratio {median(base) / median(ours):.2f}   ({ok} target < {target:.0f} s)")  # fmt: skip
    cpu = ", ".join(f"{case} {median([r[case + '_cpu'] for r in runs]):.2f} s"
                    for case in ("new", "known"))  # fmt: skip
    print(f"CPU time of digest collect  {cpu}  (user + system; less sensitive to a busy machine)")
    print(f"peak RSS of digest collect  {median([r['rss'] for r in runs]):.0f} MB")
    line = ", ".join(f"{k} {median([p[k] for p in parts]):.2f} s" for k in parts[0])
    print(f"in one process: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000, help="papers in the file")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (medians)")
    parser.add_argument("--source", type=Path, default=DEV_FILE, help="JSON Lines to replicate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        papers = make_papers_file(args.papers, folder, args.source)
        for kind in databases(args.database):
            runs, bases, parts = [], [], []
            for i in range(args.repeat):
                # Alternate which side goes first so drift in the machine's load favours neither.
                sides = [digest_round, baseline_round]
                for side in sides if i % 2 == 0 else sides[::-1]:
                    result = side(kind, folder, papers, args.papers)
                    (runs if side is digest_round else bases).append(result)
                parts.append(phases(kind, folder, papers))
            report(kind, args.papers, runs, bases, parts)


if __name__ == "__main__":
    main()
