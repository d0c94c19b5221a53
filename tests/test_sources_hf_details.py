"""arXiv categories for Hugging Face papers: batched, paced, cached in the store, best effort.

A real local HTTP server replays the recorded HF list of 2024-10-25 and arXiv API answers.
The API answers are the recorded entry of 1111.2011v2 re-keyed to each asked id, with the
category terms set per test (test-only edits of a real response, as in test_sources_arxiv).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from httpserver import ReplayServer, Reply

from digest import pipeline
from digest.cli import cli
from digest.sources import make_source
from digest.sources.arxiv_api import ArxivApi
from digest.sources.hf import HfSource
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
API_1111 = FIXTURES / "arxiv" / "id_list_1111.2011v2.xml"
API_ERROR = FIXTURES / "arxiv" / "id_abc_s0_m100_b79c8dcf6bc3.json"
HF_PATH, API_PATH = "/api/daily_papers", "/api/query"
DAY = date(2024, 10, 25)


def api_feed(ids: list[str], categories: tuple[str, ...] = ("cs.CV", "cs.LG")) -> bytes:
    """One API response holding the recorded entry once per id, with these categories."""
    body = API_1111.read_text()
    head, rest = body.split("<entry>", 1)
    entry, tail = rest.split("</entry>", 1)
    entry = re.sub(r"\s*<category term=[^>]*/>", "", entry)
    entry = entry.replace('term="cond-mat.str-el"', f'term="{categories[0]}"')
    entry += "".join(
        f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in categories
    )
    entries = "".join(f"<entry>{entry.replace('1111.2011v2', f'{i}v1')}</entry>" for i in ids)
    return (head + entries + tail).encode()


def hf_ids() -> list[str]:
    return [item["paper"]["id"] for item in json.loads(HF_2024.read_text())]


@pytest.fixture
def server():
    with ReplayServer() as replay:
        yield replay


def _settings(settings, server: ReplayServer, **extra):
    update = {"hf_base_url": server.url, "arxiv_api_url": server.url, "hf_lookback_days": 0}
    return settings.model_copy(update={**update, "arxiv_api_interval": 0.0, **extra})


def test_hf_papers_get_their_categories_in_one_batched_request(settings, server) -> None:
    ids = hf_ids()
    server.route(HF_PATH, Reply.file(HF_2024))
    server.route(API_PATH, Reply(200, api_feed(ids)))
    result = make_source("hf", _settings(settings, server)).fetch(DAY)
    (asked,) = server.hits(API_PATH)
    assert asked.query["id_list"] == [",".join(ids)] and asked.query["max_results"] == ["29"]
    assert all(p.categories == ("cs.CV", "cs.LG") for p in result.papers)
    first = result.papers[0]
    # Hugging Face's own fields stay: its authors (some hidden on purpose) and its abstract.
    assert first.authors[0] == "Zesen Cheng" and len(first.authors) == 9
    assert first.abstract.startswith("Contrastive loss is a powerful approach")
    assert result.notes == ["arXiv details: 29 enriched"]
    assert result.requests == 1  # the HF request; arXiv has a budget of its own


def test_a_missing_abstract_comes_from_arxiv(settings, server) -> None:
    items = json.loads(HF_2024.read_text())[:2]
    items[0]["paper"]["summary"] = ""
    server.route(HF_PATH, Reply.json(items))
    server.route(API_PATH, Reply(200, api_feed([i["paper"]["id"] for i in items])))
    empty, full = make_source("hf", _settings(settings, server)).fetch(DAY).papers
    assert empty.abstract.startswith("Theoretical description of anisotropic systems")
    assert not full.abstract.startswith("Theoretical")


def test_details_already_stored_are_not_asked_again(settings, server, store: Store) -> None:
    ids = hf_ids()
    server.route(HF_PATH, Reply.file(HF_2024))
    server.route(API_PATH, Reply(200, api_feed(ids[:20])))  # arXiv knows 20 of them
    config = _settings(settings, server)
    sources = [make_source("hf", config, known=store.ids_with_categories)]
    first = pipeline.collect(store, sources, DAY).sources[0]
    assert first.notes == ["arXiv details: 20 enriched, 9 unknown to arXiv"]
    assert store.get_paper(ids[0]).categories == ("cs.CV", "cs.LG")
    second = pipeline.collect(store, sources, DAY).sources[0]
    asked_again = server.hits(API_PATH)[1].query["id_list"][0].split(",")
    assert asked_again == ids[20:]  # only the 9 without categories
    assert second.notes == ["arXiv details: 0 enriched, 20 already stored, 9 unknown to arXiv"]
    assert store.get_paper(ids[0]).categories == ("cs.CV", "cs.LG")  # kept, not erased


def test_batches_of_100_with_the_configured_pause_between(settings, server) -> None:
    items = json.loads(HF_2024.read_text())
    many = [dict(items[i % 29], paper={**items[i % 29]["paper"], "id": f"2410.{20000 + i}"})
            for i in range(150)]  # fmt: skip
    server.route(HF_PATH, Reply.json(many[:100]), Reply.json(many[100:]))
    server.route(API_PATH, Reply(200, api_feed([p["paper"]["id"] for p in many])))
    sleeps: list[float] = []
    config = _settings(settings, server, arxiv_api_interval=3.0)
    source = HfSource(config, api=ArxivApi(config, sleep=sleeps.append))
    result = source.fetch(DAY)
    sizes = [len(h.query["id_list"][0].split(",")) for h in server.hits(API_PATH)]
    assert sizes == [100, 50]
    assert len(sleeps) == 1 and 2.0 < sleeps[0] <= 3.0
    assert result.notes == ["arXiv details: 150 enriched"]


def test_a_failing_arxiv_leaves_the_papers_as_they_are(settings, server) -> None:
    server.route(HF_PATH, Reply.file(HF_2024))
    server.route(API_PATH, Reply(503, b"down", {"Retry-After": "0"}))
    result = make_source("hf", _settings(settings, server, http_retries=1)).fetch(DAY)
    assert len(result.papers) == 29 and all(p.categories == () for p in result.papers)
    assert result.notes == [
        "arXiv details unavailable (HTTP 503 Service Unavailable after 2 attempts), "
        "papers kept as they are"
    ]
    assert len(server.hits(API_PATH)) == 2


def test_arxiv_refusing_the_query_is_said_in_its_words(settings, server) -> None:
    server.route(HF_PATH, Reply.file(HF_2024))
    server.route(API_PATH, Reply.recorded(API_ERROR))
    result = make_source("hf", _settings(settings, server)).fetch(DAY)
    assert len(result.papers) == 29
    assert result.notes == [
        "arXiv details unavailable (the API refused the query: incorrect id format for abc), "
        "papers kept as they are"
    ]


def test_a_second_batch_failing_keeps_the_first(settings, server) -> None:
    items = json.loads(HF_2024.read_text())
    many = [dict(items[i % 29], paper={**items[i % 29]["paper"], "id": f"2410.{20000 + i}"})
            for i in range(120)]  # fmt: skip
    server.route(HF_PATH, Reply.json(many[:100]), Reply.json(many[100:]))
    ids = [p["paper"]["id"] for p in many]
    server.route(API_PATH, Reply(200, api_feed(ids[:100])), Reply(404, b"gone"))
    result = make_source("hf", _settings(settings, server)).fetch(DAY)
    assert sum(1 for p in result.papers if p.categories) == 100
    assert result.notes == [
        "arXiv details: 100 enriched; the rest unavailable (HTTP 404), kept as they are"
    ]


def test_the_collect_line_says_how_the_details_went(db_url, server) -> None:
    server.route(HF_PATH, Reply.file(HF_2024))
    server.route(API_PATH, Reply(503, b"down", {"Retry-After": "0"}))
    env = {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_HF_BASE_URL": server.url,
        "DIGEST_ARXIV_API_URL": server.url,
        "DIGEST_HF_LOOKBACK_DAYS": "0",
        "DIGEST_HTTP_RETRIES": "0",
    }
    args = ["collect", "--source", "hf", "--date", "2024-10-25"]
    failed = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert failed.exit_code == 0
    assert failed.stdout.splitlines()[0] == (
        "hf: fetched 29, new 29, merged 0, unchanged 0, skipped 0; arXiv details unavailable "
        "(HTTP 503 Service Unavailable after 1 attempt), papers kept as they are"
    )
    server.route(API_PATH, Reply(200, api_feed(hf_ids())))
    again = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert again.stdout.splitlines()[0] == (
        "hf: fetched 29, new 0, merged 29, unchanged 0, skipped 0; arXiv details: 29 enriched"
    )
