"""The whole job: newly listed papers only, never a paper twice, empty days said plainly."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TEST_SECRET

from digest import pipeline
from digest.cli import cli
from digest.config import EmptyEdition, Settings
from digest.delivery.transports import MemoryTransport
from digest.models import Frequency, Paper, Subscriber
from digest.sources import SourceResult
from digest.store import Store


class ListSource:
    """A source returning the papers it is given (the real sources have their own tests)."""

    name = "list"

    def __init__(self, papers: list[Paper]) -> None:
        self.papers = papers

    def fetch(self, day: date | None) -> SourceResult:
        return SourceResult(papers=list(self.papers))


class BrokenSource:
    name = "broken"

    def fetch(self, day: date | None) -> SourceResult:
        raise RuntimeError("boom")


def papers(start: int, n: int) -> list[Paper]:
    return [
        Paper(arxiv_id=f"2611.{start + i:05d}", title=f"Robot grasping study {start + i}",
              abstract="We teach robots to grasp objects.", upvotes=i)
        for i in range(n)
    ]  # fmt: skip


def test_each_edition_holds_only_papers_no_earlier_edition_held(
    store: Store, settings: Settings
) -> None:
    pipeline.collect(store, [ListSource(papers(0, 10))])
    first, _ = pipeline.build_edition(store, settings, Frequency.DAILY, date(2026, 11, 25))
    pipeline.collect(store, [ListSource(papers(5, 10))])  # 5 seen before, 5 new
    second, _ = pipeline.build_edition(store, settings, Frequency.DAILY, date(2026, 11, 26))
    first_ids = {p.arxiv_id for p in first.papers}
    second_ids = {p.arxiv_id for p in second.papers}
    assert len(first_ids) == 10 and second_ids == {f"2611.{i:05d}" for i in range(10, 15)}
    # the weekly edition is its own schedule: it may hold what the dailies held
    weekly, _ = pipeline.build_edition(store, settings, Frequency.WEEKLY, date(2026, 11, 26))
    assert weekly.key == "weekly-2026-W48" and len(weekly.papers) == 15


def test_building_the_same_day_twice_returns_the_same_edition(
    store: Store, settings: Settings
) -> None:
    pipeline.collect(store, [ListSource(papers(0, 3))])
    one, _ = pipeline.build_edition(store, settings, Frequency.DAILY, date(2026, 11, 26))
    pipeline.collect(store, [ListSource(papers(3, 3))])
    two, reason = pipeline.build_edition(store, settings, Frequency.DAILY, date(2026, 11, 26))
    assert one.id == two.id and "already exists" in reason
    assert len(two.papers) == 3


def test_an_empty_day_is_skipped_by_default_and_said_plainly(
    store: Store, settings: Settings
) -> None:
    edition, reason = pipeline.build_edition(store, settings, Frequency.DAILY, date(2026, 11, 28))
    assert edition is None
    assert "nothing new" in reason and "DIGEST_EMPTY_EDITION=skip" in reason


def test_an_empty_day_sends_a_nothing_new_email_when_asked(
    store: Store, settings: Settings
) -> None:
    settings = settings.model_copy(update={"empty_edition": EmptyEdition.SEND})
    store.add_subscriber(Subscriber(email="reader@example.org"))
    memory = MemoryTransport()
    report = pipeline.run(settings, store, today=date(2026, 11, 28), sources=[], transport=memory)
    assert report.edition is not None and report.edition.papers == ()
    assert len(memory.messages) == 1 and "No new papers" in memory.messages[0].text


def test_a_crashing_source_spares_the_others(store: Store) -> None:
    report = pipeline.collect(store, [BrokenSource(), ListSource(papers(0, 2))])
    assert report.new == 2
    assert [s.name for s in report.failed] == ["broken"]
    assert "RuntimeError: boom" in report.failed[0].error


def _papers_file(tmp_path: Path, start: int, n: int) -> Path:
    path = tmp_path / f"papers-{start}.jsonl"
    path.write_text("".join(
        json.dumps({"id": p.arxiv_id, "title": p.title, "abstract": p.abstract}) + "\n"
        for p in papers(start, n)
    ))  # fmt: skip
    return path


def test_digest_run_twice_in_a_day_sends_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("DIGEST_SOURCES", "file")
    monkeypatch.setenv("DIGEST_PAPERS_FILE", str(_papers_file(tmp_path, 0, 12)))
    runner = CliRunner()
    assert runner.invoke(cli, ["subscribers", "add", "a@example.org"]).exit_code == 0
    assert runner.invoke(cli, ["subscribers", "add", "b@example.org"]).exit_code == 0
    first = runner.invoke(cli, ["run", "--date", "2026-11-26"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["run", "--date", "2026-11-26"])
    assert second.exit_code == 0, second.output
    emails = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(emails) == 2
    to = {
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"] for p in emails
    }
    assert to == {"a@example.org", "b@example.org"}
    assert "written to ./outbox: 0," in second.output  # the file transport sends nothing


def test_digest_run_without_a_secret_key_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2
    assert result.output.startswith("error: DIGEST_SECRET_KEY:")
    assert len(result.output.strip().splitlines()) == 1
