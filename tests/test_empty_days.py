"""The empty-day rule per subscriber (issue 16 item 4): "skip" or "roll" a day with nothing.

An edition has nothing for a subscriber when their email would show no paper: nothing new was
listed, or nothing listed passed their topics, keywords and minimum score. "skip" (today's
rule) leaves it at that; "roll" also keeps that edition's papers for their next email, which
selects from them again (scores as they are then), once, and never sends an empty email.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date
from pathlib import Path

from test_schedule import make_settings

from digest import pipeline
from digest.models import Frequency, Subscriber
from digest.store import Store

DAYS = [date(2026, 11, d) for d in (23, 24, 25, 26, 27)]


def write(path: Path, papers: list[tuple[str, int]]) -> None:
    """A JSON Lines papers file: (arXiv id, upvotes) each, on language model reasoning."""
    path.write_text(
        "".join(
            json.dumps({
                "id": arxiv_id, "upvotes": upvotes,
                "title": f"Reasoning paper {arxiv_id} on language models",
                "abstract": "We study reasoning in large language models and report results.",
            }) + "\n"
            for arxiv_id, upvotes in papers
        )
    )  # fmt: skip


def inbox(outbox: Path, key: str) -> dict[str, str]:
    """Recipient -> the text of the email they got of edition ``key``."""
    found = {}
    for path in sorted((outbox / key).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"])] = message.get_body(("plain",)).get_content()
    return found


def test_skip_drops_a_quiet_day_and_roll_carries_its_papers_into_the_next_email_once(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, empty_edition="send")
    store = Store(settings.database_url)
    store.migrate()
    # Both want only papers that have taken off (a trending score of 20 or more).
    store.add_subscriber(Subscriber(email="skip@example.org", min_score=20))
    store.add_subscriber(Subscriber(email="roll@example.org", min_score=20, empty_days="roll"))

    def day(n: int, papers: list[tuple[str, int]]) -> dict[str, str]:
        write(settings.papers_file, papers)
        report = pipeline.run(settings, store, frequency=Frequency.DAILY, today=DAYS[n])
        assert report.ok, report.reason
        return inbox(settings.outbox, f"daily-{DAYS[n].isoformat()}")

    # Monday: two papers nobody has voted for yet: nothing for either reader. skip keeps
    # today's rule (DIGEST_EMPTY_EDITION=send: an email that says so), roll gets none.
    assert list(day(0, [("2611.00001", 3), ("2611.00002", 4)])) == ["skip@example.org"]
    # Tuesday: Monday's papers took off overnight (collect refreshes their votes); two new ones.
    got = day(1, [("2611.00001", 60), ("2611.00002", 4), ("2611.00011", 30), ("2611.00012", 25)])
    assert "2611.00011" in got["skip@example.org"] and "2611.00012" in got["skip@example.org"]
    assert "2611.00001" not in got["skip@example.org"]  # skip: Monday is gone for good
    # roll: Monday's papers are selected again, as they stand now; the quiet one stays out.
    assert "2611.00001" in got["roll@example.org"] and "2611.00011" in got["roll@example.org"]
    assert "2611.00002" not in got["roll@example.org"]
    # Wednesday: Monday's papers never come again (they rolled into one email, once).
    got = day(2, [("2611.00021", 40), ("2611.00001", 90)])
    assert "2611.00021" in got["roll@example.org"]
    assert "2611.00001" not in got["roll@example.org"]
    # Thursday, nothing new at all (a holiday) and DIGEST_EMPTY_EDITION=send: skip keeps
    # today's rule (the "nothing new" email), roll gets no empty email.
    got = day(3, [("2611.00021", 41)])  # only a known paper: nothing new
    assert list(got) == ["skip@example.org"]
    # Friday: roll's email is Friday's papers (the holiday had none to carry).
    got = day(4, [("2611.00041", 50)])
    assert "2611.00041" in got["roll@example.org"] and "2611.00041" in got["skip@example.org"]
    counts = {}
    for key in [f"daily-{d.isoformat()}" for d in DAYS]:
        for to in inbox(settings.outbox, key):
            counts[to] = counts.get(to, 0) + 1
    assert counts == {"skip@example.org": 5, "roll@example.org": 3}
    store.close()
