"""The reader's profile end to end: CLI flags, real emails in the file outbox, import/export.

`subscribers add` and `subscribers set` take likes, dislikes, blend, follows, time zone,
hour, empty days and follow-ups, refuse bad values in one line with exit code 2, and the next
edition's email changes with the likes; a liked paper never comes back; export then import
into a fresh database keeps the whole profile, CSV and JSON, SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.store import Store
from tests.conftest import FIXTURES, TEST_SECRET

ROWS = [
    json.loads(line)
    for line in (FIXTURES / "arxiv_topics_sample.jsonl").read_text(encoding="utf-8").splitlines()
]
TOPIC = {r["id"]: r["topic"] for r in ROWS}
DAY1 = [r for r in ROWS if r["date"] == "2026-01-16"]
DAY2 = [r for r in ROWS if r["date"] == "2026-01-19"]


def _run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> Path:
    """A SQLite file by default; ``indirect`` "postgresql" gives a throw-away PostgreSQL."""
    kind = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("pg_url") if kind == "postgresql" else db_url
    monkeypatch.setenv("DIGEST_DATABASE_URL", url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DIGEST_SOURCES", "file")
    monkeypatch.setenv("DIGEST_OUTBOX", str(tmp_path / "outbox"))
    return tmp_path


def _papers_file(path: Path, rows: list[dict], votes: dict[str, int] | None = None) -> Path:
    votes = votes or {}
    path.write_text(
        "".join(
            json.dumps({"id": r["id"], "title": r["title"], "abstract": r["abstract"],
                        "upvotes": votes.get(r["id"], 0),
                        "authors": ["Ada Lovelace"] if r is rows[-1] else ["Someone Else"]}) + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )  # fmt: skip
    return path


def _emails(folder: Path, day: str) -> dict[str, str]:
    """Recipient -> text part of each email of the day's edition."""
    found = {}
    for path in (folder / "outbox").rglob(f"daily-{day}*/*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[message["To"]] = message.get_body(("plain",)).get_content()
    return found


def _papers_in(text: str) -> list[str]:
    """The papers an email shows, by their links (why lines name liked papers too)."""
    return list(dict.fromkeys(re.findall(r"arxiv\.org/abs/(\d{4}\.\d{5})", text)))


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_likes_change_the_next_edition_and_a_liked_paper_never_returns(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _papers_file(env / "day1.jsonl", DAY1)
    _run("collect", "--file", str(env / "day1.jsonl"))
    _run("build", "--date", "2026-11-26", "--no-collect")  # day one's edition holds these
    robots = [r["id"] for r in DAY1 if r["topic"] == "cs.RO"][:5]
    likes = [a for liked in robots for a in ("--like", liked)]
    # One as an abs URL with a version, as people paste them.
    likes[-1] = f"https://arxiv.org/abs/{robots[-1]}v2"
    _run("subscribers", "add", "reader@example.org", "--max-papers", "8", *likes)
    _run("subscribers", "add", "control@example.org", "--max-papers", "8")
    _run("subscribers", "add", "fan@example.org", "--max-papers", "3", "--keyword", "zebrafish",
         "--follow-author", "A. Lovelace")  # fmt: skip

    # Day two: the most upvoted paper is a robotics one; the reader likes it before the send.
    hit = next(r["id"] for r in DAY2 if r["topic"] == "cs.RO")
    day2 = _papers_file(env / "day2.jsonl", DAY2, votes={hit: 500})
    _run("collect", "--file", str(day2))
    _run("subscribers", "set", "reader@example.org", "--like", hit)
    monkeypatch.setenv("DIGEST_PAPERS_FILE", str(day2))
    sent = _run("run", "--date", "2026-11-27")
    assert "written to" in sent.output

    got = _emails(env, "2026-11-27")
    reader, control = _papers_in(got["reader@example.org"]), _papers_in(got["control@example.org"])
    assert len(reader) == len(control) == 8
    in_topic = sum(TOPIC[a] == "cs.RO" for a in reader)
    assert in_topic >= 6 > sum(TOPIC[a] == "cs.RO" for a in control)
    assert hit in control and hit not in reader  # liked: never sent to them again
    assert "you liked" in got["reader@example.org"]
    # The follower gets Ada's paper though no keyword matches it.
    ada = DAY2[-1]["id"]
    assert _papers_in(got["fan@example.org"]) == [ada]
    assert "by A. Lovelace, whom you follow" in got["fan@example.org"]


def test_bad_profile_values_are_one_line_and_exit_2(env: Path) -> None:
    _papers_file(env / "day1.jsonl", DAY1)
    _run("collect", "--file", str(env / "day1.jsonl"))
    cases = {
        ("--like", "2999.99999"): "2999.99999 is not a stored paper",
        ("--like", "not-an-id"): "not an arXiv id or URL: 'not-an-id'",
        ("--blend", "1.5"): "blend must be a number from 0 to 1, not '1.5'",
        ("--hour", "24"): "hour must be a whole number from 0 to 23, not '24'",
        ("--timezone", "Mars/Olympus"): "not a time zone: 'Mars/Olympus'",
        ("--like", DAY1[0]["id"], "--dislike", DAY1[0]["id"]): "cannot be both liked and disliked",
    }
    for args, message in cases.items():
        result = _run("subscribers", "add", "x@example.org", *args, code=2)
        assert result.output.count("\n") == 1 and message in result.output, result.output
    assert "no subscribers" in _run("subscribers", "list").output  # nothing half-added


def test_set_changes_only_what_it_is_told(env: Path, db_url: str) -> None:
    _papers_file(env / "day1.jsonl", DAY1)
    _run("collect", "--file", str(env / "day1.jsonl"))
    a, b, c = (r["id"] for r in DAY1[:3])
    _run("subscribers", "add", "jane@example.org", "--like", a, "--like", b, "--dislike", c,
         "--blend", "0.4", "--follow-author", "Kaiming He", "--follow-org", "DeepMind",
         "--timezone", "europe/berlin", "--hour", "7", "--empty-days", "roll", "--no-followups")  # fmt: skip
    out = _run("subscribers", "set", "jane@example.org", "--unlike", a, "--like", c,
               "--unfollow-author", "kaiming he", "--hour", "", "--followups").output  # fmt: skip
    assert out.startswith("jane@example.org: 2 likes; 0 dislikes; blend 0.4;")
    store = Store(db_url)
    try:
        jane = store.find_subscriber("jane@example.org")
    finally:
        store.close()
    assert (set(jane.likes), jane.dislikes) == ({b, c}, ())
    assert (jane.blend, jane.follow_authors, jane.follow_orgs) == (0.4, (), ("DeepMind",))
    assert (jane.timezone, jane.send_hour, jane.empty_days, jane.followups) == (
        "Europe/Berlin", None, "roll", True,
    )  # fmt: skip
    assert "is not on the list" in _run("subscribers", "set", "nobody@example.org", code=1).output


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_keeps_the_whole_profile(
    env: Path, fresh_url: str, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    _papers_file(env / "day1.jsonl", DAY1)
    _run("collect", "--file", str(env / "day1.jsonl"))
    a, b, c = (r["id"] for r in DAY1[:3])
    _run("subscribers", "add", "jane@example.org", "--like", a, "--like", b, "--dislike", c,
         "--max-papers", "12", "--blend", "0.25", "--follow-author", "José Raúl Romero",
         "--follow-author", "K. He", "--follow-org", "Google DeepMind", "--timezone",
         "Australia/Adelaide", "--hour", "6", "--empty-days", "roll", "--no-followups")  # fmt: skip
    _run("subscribers", "add", "plain@example.org")
    first = _run("subscribers", "export", "--format", fmt).output
    (env / "people").write_text(first, encoding="utf-8")

    monkeypatch.setenv("DIGEST_DATABASE_URL", fresh_url)  # no papers there: likes are kept
    assert "imported 2;" in _run("subscribers", "import", str(env / "people")).output
    assert _run("subscribers", "export", "--format", fmt).output == first
    store = Store(fresh_url)
    try:
        jane = store.find_subscriber("jane@example.org")
    finally:
        store.close()
    assert (set(jane.likes), jane.dislikes, jane.max_papers, jane.blend) == ({a, b}, (c,), 12, 0.25)
    assert jane.follow_authors == ("José Raúl Romero", "K. He")
    assert (jane.follow_orgs, jane.timezone, jane.send_hour) == (
        ("Google DeepMind",),
        "Australia/Adelaide",
        6,
    )
    assert (jane.empty_days, jane.followups) == ("roll", False)


def test_import_reports_bad_profile_values_and_keeps_the_rest(env: Path) -> None:
    path = env / "people.csv"
    path.write_text(
        "email,likes,blend,send_hour,timezone,empty_days,followups\n"
        "ok@example.org,2410.17243;https://arxiv.org/pdf/2410.16251v1,0.5,7,Asia/Tokyo,skip,false\n"
        "bad1@example.org,nonsense,,,,,\n"
        "bad2@example.org,,7,,,,\n"
        "bad3@example.org,,,25,,,\n"
        "bad4@example.org,,,,Nowhere/City,,\n"
        "bad5@example.org,,,,,sometimes,\n"
        "bad6@example.org,,,,,,maybe\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["subscribers", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 1;" in result.stdout and "bad rows 6" in result.stdout
    for line, why in [(3, "not an arXiv id"), (4, "blend must be"), (5, "hour must be"),
                      (6, "not a time zone"), (7, "empty days must be"), (8, "followups must be")]:  # fmt: skip
        assert f"{path}:{line}: skipped: " in result.stderr and why in result.stderr
    _run("subscribers", "export", "--format", "json")
    rows = json.loads(_run("subscribers", "export", "--format", "json").output)
    assert (
        sorted(rows[0]["likes"]) == ["2410.16251", "2410.17243"] and rows[0]["followups"] is False
    )
