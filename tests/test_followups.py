""" "Since you last saw it": a paper an earlier email held comes back once when it has news."""

from __future__ import annotations

import email
import email.policy
import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import FIXTURES, TEST_SECRET

from digest.cli import cli
from digest.models import Edition, Frequency, Paper, Theme
from digest.store import Store, schema
from digest.store.shown import Seen
from digest.themes.followups import MAX_FOLLOWUPS, choose_followups, news_of, surged

HF_DAY = FIXTURES / "hf_daily_papers_2024-10-25.json"
RECENT = FIXTURES / "hf_daily_papers_recent.json"


def _emails(outbox: Path, edition: str) -> dict[str, email.message.EmailMessage]:
    """The edition's emails in the file outbox, by recipient."""
    found = {}
    for path in sorted((outbox / edition).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[message["To"]] = message
    return found


def _parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def _write(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps(items))
    return path


def test_a_paper_that_gains_a_repository_is_told_once_and_never_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'digest.db'}"
    for name, value in {
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_DATABASE_URL": db,
        "DIGEST_SOURCES": "file",
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_BASE_URL": "https://digest.example.org",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def run(day: str, items: list[dict]) -> None:
        monkeypatch.setenv("DIGEST_PAPERS_FILE", str(_write(tmp_path / f"{day}.json", items)))
        result = runner.invoke(cli, ["run", "--date", day])
        assert result.exit_code == 0, result.output

    for address in ("ada@example.org", "bob@example.org"):
        assert runner.invoke(cli, ["subscribers", "add", address]).exit_code == 0
    store = Store(db)
    bob = store.find_subscriber("bob@example.org")
    store.update_preferences(bob.id, followups=False)  # the preference: off

    day1 = json.loads(HF_DAY.read_text())
    run("2026-11-24", day1)
    first = _emails(tmp_path / "outbox", "daily-2026-11-24")
    assert set(first) == {"ada@example.org", "bob@example.org"}
    assert "Since you last saw it" not in _parts(first["ada@example.org"])[0]

    # The next day's file: one new paper, and papers of the first day with news since.
    day2 = json.loads(HF_DAY.read_text())
    day2[3]["paper"]["githubRepo"] = "https://github.com/example/repo-of-2410.18693"
    day2[0]["paper"]["upvotes"] = 64 * 2 + 1  # doubled and +65: a surge
    day2[1]["paper"]["upvotes"] = 41 + 19  # +19: not enough
    run("2026-11-25", [*day2, *json.loads(RECENT.read_text())])
    second = _emails(tmp_path / "outbox", "daily-2026-11-25")
    text, html = _parts(second["ada@example.org"])
    # The section sits under the list of themes; the edition's own papers follow it.
    section, _, papers = text.split("== Since you last saw it ==")[1].partition("\n== ")
    assert "code released, in your email of" in section
    assert "Code: https://github.com/example/repo-of-2410.18693" in section
    assert "upvotes 64 → 129" in section
    assert "2410.16251" not in section  # +19 is no surge
    assert section.index("code released") < section.index("upvotes 64")  # code first
    assert "Since you last saw it" in html and "repo-of-2410.18693" in html
    # The new paper is still the edition's only paper; nothing of day 1 is listed as new.
    assert "Large Multimodal Models as General In-Context Classifiers" in papers
    assert "Large Multimodal Models" not in section
    assert "1 paper in 1 theme" in text
    bob_text, _ = _parts(second["bob@example.org"])
    assert "Since you last saw it" not in bob_text

    # A day later nothing has changed again: the section does not come back.
    day3 = json.loads(HF_DAY.read_text())
    day3[3]["paper"]["githubRepo"] = "https://github.com/example/repo-of-2410.18693"
    day3[0]["paper"]["upvotes"] = 129
    fresh = json.loads(RECENT.read_text())
    fresh[0]["paper"]["id"] = "2602.23230"
    run("2026-11-26", [*day3, *fresh])
    third = _emails(tmp_path / "outbox", "daily-2026-11-26")
    assert "Since you last saw it" not in _parts(third["ada@example.org"])[0]
    store.close()


def _seen(arxiv_id: str = "2411.00001", **values) -> Seen:
    base = {"edition_id": 1, "shown_at": datetime(2026, 11, 20, tzinfo=UTC), "upvotes": 10,
            "github_stars": None, "github_url": None, "project_url": None, "version": 1}  # fmt: skip
    return Seen(arxiv_id=arxiv_id, **{**base, **values})


def _edition(store: Store, n: int, papers: list[Paper]) -> Edition:
    """A saved daily edition of ``papers`` in one theme, ``n`` days after 2026-11-20."""
    day = datetime(2026, 11, 20 + n, tzinfo=UTC).date()
    saved = store.save_edition(
        Edition(f"daily-{day}", Frequency.DAILY, day, (Theme("T", tuple(papers)),))
    )
    return store.get_edition(saved.id)


def _paper(arxiv_id: str = "2411.00001", **values) -> Paper:
    return Paper(**{"arxiv_id": arxiv_id, "title": f"Paper {arxiv_id}", "upvotes": 10,
                    "version": 1, **values})  # fmt: skip


@pytest.mark.parametrize(
    ("before", "now", "surge"),
    [(10, 30, True), (10, 29, False), (30, 59, False), (30, 60, True), (0, 20, True),
     (0, 19, False), (100, 199, False), (100, 200, True), (None, 50, False)],
)  # fmt: skip
def test_a_surge_is_at_least_doubled_and_at_least_twenty_more(before, now, surge) -> None:
    assert surged(before, now) is surge


def test_news_is_a_repository_a_project_page_a_new_version_or_a_surge() -> None:
    seen = _seen(github_url="https://github.com/a/b", github_stars=15)
    assert news_of(seen, _paper(github_url="https://github.com/a/b", github_stars=34)) == []
    stars = news_of(seen, _paper(github_url="https://github.com/a/b", github_stars=35))
    assert [words for _, words in stars] == ["GitHub stars 15 → 35"]
    assert [w for _, w in news_of(_seen(), _paper(project_url="https://p.example"))] == [
        "project page"
    ]
    assert [w for _, w in news_of(_seen(version=1), Paper("2411.00001", "t", version=3))] == [
        "arXiv v3 (you saw v1)"
    ]
    assert news_of(_seen(version=None), Paper("2411.00001", "t", version=3)) == []


def test_at_most_five_strongest_first_and_never_a_paper_the_email_shows_anyway() -> None:
    candidates = [
        (_seen(f"2411.{i:05d}"), _paper(f"2411.{i:05d}", github_url=f"https://github.com/a/{i}"))
        for i in range(4)
    ] + [
        (_seen(f"2411.{i:05d}", upvotes=10), Paper(f"2411.{i:05d}", "t", upvotes=30 + i))
        for i in range(10, 14)
    ]
    chosen = choose_followups(candidates, exclude={"2411.00002"})
    assert len(chosen) == MAX_FOLLOWUPS == 5
    assert [f.paper.arxiv_id for f in chosen] == [
        "2411.00000", "2411.00001", "2411.00003", "2411.00013", "2411.00012",
    ]  # fmt: skip


def test_the_store_keeps_first_snapshots_and_emails_and_forgets_with_the_reader(
    any_store: Store,
) -> None:
    from digest.models import Subscriber

    store = any_store
    one, two = _paper("2411.00001"), _paper("2411.00002")
    store.upsert_papers([one, two])
    ada = store.add_subscriber(Subscriber("ada@example.org"))
    bob = store.add_subscriber(Subscriber("bob@example.org"))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    e1, e2, e3 = (
        store.save_edition(
            Edition(f"daily-2026-11-2{n}", Frequency.DAILY, (day + timedelta(n)).date(),
                    (Theme("T", (one, two)),) if n == 4 else ())
        ).id
        for n in (4, 5, 6)
    )  # fmt: skip
    store.snapshot_edition(e1, [one, two], day)
    store.snapshot_edition(e1, [_paper("2411.00001", upvotes=99)], day)  # the first one stays
    store.record_emails(
        e1, {ada.id: (["2411.00001", "2411.00002"], []), bob.id: (["2411.00001"], [])}, day
    )
    store.record_emails(e1, {ada.id: (["2411.00009"], ["x"])}, day)  # a resend changes nothing
    assert store.papers_with_news(day - timedelta(days=1)) == []
    store.upsert_papers([_paper("2411.00001", github_url="https://github.com/a/b", upvotes=25)])
    ((seen, paper),) = store.papers_with_news(day - timedelta(days=1))
    assert (seen.edition_id, seen.upvotes, seen.github_url) == (e1, 10, None)
    assert (paper.upvotes, paper.github_url) == (25, "https://github.com/a/b")
    assert store.papers_with_news(day - timedelta(days=1), but=e1) == []
    assert store.papers_with_news(day + timedelta(days=1)) == []  # older than asked
    store.record_emails(e2, {ada.id: ([], ["2411.00001"])}, day + timedelta(days=1))
    emails = store.shown_emails([ada.id, bob.id], day - timedelta(days=1))
    assert [(e.edition_id, e.papers, e.told) for e in emails[ada.id]] == [
        (e1, {"2411.00001", "2411.00002"}, set()), (e2, set(), {"2411.00001"}),
    ]  # fmt: skip
    assert [e.papers for e in emails[bob.id]] == [{"2411.00001"}]
    assert set(store.watched_papers(day - timedelta(days=1))) == {"2411.00001", "2411.00002"}
    store.delete_subscriber(ada.id, "hash-of-ada")
    with store.transaction() as conn:  # ada's emails went with her
        t = schema.shown_emails
        assert conn.scalar(sa.select(sa.func.count()).where(t.c.subscriber_id == ada.id)) == 0
    # A month on, old rows are forgotten as new ones are recorded.
    later = day + timedelta(days=31)
    store.snapshot_edition(e3, [two], later, forget_before=day + timedelta(days=1))
    store.record_emails(e3, {bob.id: (["2411.00002"], [])}, later,
                        forget_before=day + timedelta(days=1))  # fmt: skip
    assert [e.edition_id for e in store.shown_emails([bob.id], day)[bob.id]] == [e3]
    assert set(store.watched_papers(day)) == {"2411.00002"}
    assert store.papers_with_news(day) == []


def test_a_resent_email_tells_the_same_and_the_next_edition_nothing_again(
    any_store: Store, settings
) -> None:
    from digest.delivery.contents import Contents
    from digest.delivery.shown import ShownBatches
    from digest.models import Subscriber

    store = any_store
    old = [_paper(f"2411.{i:05d}") for i in range(8)]
    store.upsert_papers(old + [_paper(f"2411.{i:05d}") for i in (100, 101, 102)])
    readers = [store.add_subscriber(Subscriber(f"r{i}@example.org")) for i in range(3)]
    store.update_preferences(readers[2].id, followups=False)
    readers = list(store.iter_active_subscribers(Frequency.DAILY))

    edition = functools.partial(_edition, store)

    def send(ed: Edition) -> dict[int, list[str]]:
        told = ShownBatches(store, Contents(ed, settings)).prepare(readers)
        return {sid: [f.paper.arxiv_id for f in fs] for sid, fs in told.items()}

    assert send(edition(0, old)) == {}
    # Seven of the eight gain code; one more only gains 19 upvotes.
    store.upsert_papers([_paper(p.arxiv_id, github_url=f"https://github.com/a/{i}")
                         for i, p in enumerate(old[:7])] + [_paper("2411.00007", upvotes=29)])  # fmt: skip
    second = edition(1, [_paper("2411.00100")])
    first_send = send(second)
    assert list(first_send) == [readers[0].id, readers[1].id]  # the third turned them off
    assert len(first_send[readers[0].id]) == 5  # capped
    assert send(second) == first_send  # a resend (a deferred row claimed again): the same
    third = edition(2, [_paper("2411.00101")])
    later = send(third)
    assert {sid: len(ids) for sid, ids in later.items()} == {readers[0].id: 2, readers[1].id: 2}
    assert not set(later[readers[0].id]) & set(first_send[readers[0].id])  # never repeated
    assert send(edition(3, [_paper("2411.00102")])) == {}  # all 7 told; the 8th never surged


def test_a_batch_keeps_its_followups_while_the_next_batch_is_prepared(
    any_store: Store, settings
) -> None:
    """The send loop prepares a batch while the one before it is still being built: that
    one's "Since you last saw it" must survive, on both databases (awaited on PostgreSQL)."""
    import asyncio

    store = any_store
    readers, contents, shown = _second_send(store, settings, 3)

    async def batches() -> None:
        for reader in readers:  # three batches of one
            await shown.prepare_async([reader])
            await store.aclose()

    asyncio.run(batches())
    # The last two batches' readers get their follow-ups; the first batch's are let go.
    assert set(contents.followups) == {readers[1].id, readers[2].id}
    assert all(len(told) == 3 for told in contents.followups.values())
    for reader in readers:  # each batch's emails were recorded
        assert store.shown_emails([reader.id], datetime(2026, 11, 21, tzinfo=UTC))[reader.id]
    assert "Since you last saw it" in contents.message(readers[2]).text


def test_a_batch_larger_than_a_piece_is_recorded_and_followed_up_whole(
    any_store: Store, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send loop records a batch's emails a piece of readers at a time (the connections
    go on between pieces): every reader of the batch is recorded and gets their follow-ups."""
    import asyncio

    import digest.delivery.shown

    monkeypatch.setattr(digest.delivery.shown, "PIECE", 2)
    store = any_store
    readers, contents, shown = _second_send(store, settings, 5)

    async def batch() -> None:
        await shown.prepare_async(readers)  # three pieces
        await store.aclose()

    asyncio.run(batch())
    assert set(contents.followups) == {r.id for r in readers}
    assert all(len(told) == 3 for told in contents.followups.values())
    recorded = store.shown_emails([r.id for r in readers], datetime(2026, 11, 21, tzinfo=UTC))
    assert sorted(recorded) == sorted(r.id for r in readers)
    assert all(emails[-1].edition_id == contents.edition.id for emails in recorded.values())


def _second_send(store: Store, settings, n: int):
    """``n`` readers whose first email held three papers that have since gained code, and the
    next edition's contents and shown batches: (readers, contents, shown)."""
    from digest.delivery.contents import Contents
    from digest.delivery.shown import ShownBatches
    from digest.models import Subscriber

    old = [_paper(f"2411.{i:05d}") for i in range(3)]
    store.upsert_papers([*old, _paper("2411.00100")])
    for i in range(n):
        store.add_subscriber(Subscriber(f"r{i}@example.org"))
    readers = list(store.iter_active_subscribers(Frequency.DAILY))
    edition = functools.partial(_edition, store)
    ShownBatches(store, Contents(edition(0, old), settings)).prepare(readers)
    store.upsert_papers([_paper(p.arxiv_id, github_url=f"https://github.com/a/{i}")
                         for i, p in enumerate(old)])  # fmt: skip
    contents = Contents(edition(1, [_paper("2411.00100")]), settings)
    return readers, contents, ShownBatches(store, contents)
