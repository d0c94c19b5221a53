"""Collect keeps recently shown papers' signals fresh, politely, without listing them as new.

A real local HTTP server replays the recorded HF list of 2024-10-25 (and the recorded item
of 2026-03-06 as a later day's only paper) and arXiv API answers built from the recorded
entry of 1111.2011v2, as in test_sources_hf_details.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date
from pathlib import Path

import pytest
from httpserver import ReplayServer, Reply
from test_sources_hf_details import API_PATH, HF_2024, HF_PATH, api_feed, hf_ids

from digest import pipeline
from digest.models import Frequency, Subscriber
from digest.store import Store

RECENT = Path(__file__).parent / "fixtures" / "hf_daily_papers_recent.json"
FIRST, LATER = date(2024, 10, 25), date(2024, 11, 20)


@pytest.fixture
def server():
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def config(settings, server: ReplayServer):
    """The settings collecting from the replayed Hugging Face and arXiv APIs."""
    return settings.model_copy(
        update={"hf_base_url": server.url, "arxiv_api_url": server.url, "sources": ["hf"],
                "hf_lookback_days": 0, "arxiv_api_interval": 0.0}
    )  # fmt: skip


def _text(outbox: Path, edition: str) -> str:
    (path,) = sorted((outbox / edition).glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message.get_body(("plain",)).get_content()


def test_a_later_run_refreshes_the_shown_papers_days_and_versions_and_tells_once(
    config, server: ReplayServer, store: Store, tmp_path: Path
) -> None:
    ids = hf_ids()
    later_items = json.loads(HF_2024.read_text())
    later_items[3]["paper"]["githubRepo"] = "https://github.com/example/late-code"
    new_id = json.loads(RECENT.read_text())[0]["paper"]["id"]
    server.route(
        HF_PATH, Reply.file(HF_2024), Reply.json(later_items), query={"date": "2024-10-25"}
    )
    server.route(HF_PATH, Reply.file(RECENT), query={"date": "2024-11-20"})
    versions = api_feed(ids).replace(f"{ids[5]}v1".encode(), f"{ids[5]}v3".encode())
    server.route(API_PATH, Reply(200, api_feed(ids)), Reply(200, api_feed([new_id])),
                 Reply(200, versions))  # fmt: skip
    store.add_subscriber(Subscriber("ada@example.org"))

    first = pipeline.run(config, store, today=FIRST)
    assert first.delivery.sent == 1
    assert [s.name for s in first.collect.sources] == ["hf"]  # nothing shown yet: no refresh

    later = pipeline.run(config, store, today=LATER)
    hf, refresh = later.collect.sources
    assert (hf.new, refresh.name, refresh.new, refresh.merged) == (1, "refresh", 0, 2)
    assert refresh.notes == [
        "HF lists of 1 earlier days read",
        "arXiv versions of 29 papers checked",
    ]
    assert refresh.requests == 2  # one HF list, one API request for all 29 ids
    asked = server.hits(API_PATH)[-1].query["id_list"][0].split(",")
    assert sorted(asked) == sorted(ids)
    assert [p.arxiv_id for p in later.edition.papers] == [new_id]  # not listed again
    text = _text(tmp_path / "outbox", "daily-2024-11-20")
    section = text.split("== Since you last saw it ==")[1].partition("\n== ")[0]
    assert "code released" in section and "https://github.com/example/late-code" in section
    assert "arXiv v3 (you saw v1)" in section
    assert store.get_paper(ids[3]).title  # a refresh changes only signals

    # The next day: the papers of the editions of the last 30 days are asked again, and the
    # two told do not come back though they still have their news.
    fresh = json.loads(RECENT.read_text())
    fresh[0]["paper"]["id"] = "2602.23230"
    server.route(HF_PATH, Reply.json(fresh), query={"date": "2024-11-21"})
    server.route(HF_PATH, Reply.file(RECENT), query={"date": "2026-03-06"})  # the new one's day
    server.route(API_PATH, Reply(200, api_feed(["2602.23230"])), Reply(200, versions))
    third = pipeline.run(config, store, today=date(2024, 11, 21))
    assert len(server.hits(API_PATH)[-1].query["id_list"][0].split(",")) == 29 + 1
    assert third.collect.sources[1].merged == 0  # nothing changed since
    assert "Since you last saw it" not in _text(tmp_path / "outbox", "daily-2024-11-21")


def test_digest_collect_prints_the_refresh_line_and_lists_nothing_again(
    config, server: ReplayServer, store: Store, tmp_path: Path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    ids = hf_ids()
    later_items = json.loads(HF_2024.read_text())
    later_items[0]["paper"]["projectPage"] = "https://project.example.org/"
    server.route(
        HF_PATH, Reply.file(HF_2024), Reply.json(later_items), query={"date": "2024-10-25"}
    )
    server.route(HF_PATH, Reply.json([]), query={"date": "2024-11-20"})
    server.route(API_PATH, Reply(200, api_feed(ids)))
    store.add_subscriber(Subscriber("ada@example.org"))
    assert pipeline.run(config, store, today=FIRST).delivery.sent == 1
    for name, value in {"DIGEST_DATABASE_URL": config.database_url, "DIGEST_SOURCES": "hf",
                        "DIGEST_HF_BASE_URL": server.url, "DIGEST_ARXIV_API_URL": server.url,
                        "DIGEST_HF_LOOKBACK_DAYS": "0", "DIGEST_ARXIV_API_INTERVAL": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, str(value))
    result = CliRunner().invoke(cli, ["collect", "--date", "2024-11-20"])
    assert result.exit_code == 0, result.output
    assert "refresh: fetched 29, new 0, merged 1, unchanged 28, skipped 0; HF lists of 1 " in (
        result.output
    )
    assert store.get_paper(ids[0]).project_url == "https://project.example.org/"
    assert store.unpublished_papers(Frequency.DAILY) == []  # nothing to list again
