"""The arxiv source against a real local server: listing feed, API enrichment, errors, merge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpserver import ReplayServer, Reply

from digest.errors import DigestError
from digest.sources import make_source
from digest.sources.arxiv import parse_listing
from digest.sources.arxiv_api import ArxivApi, parse_api_feed
from digest.sources.http import PoliteClient
from digest.sources.jsonfile import from_hf_items
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
LISTING = FIXTURES / "arxiv" / "cs.AI_2025-08-20.xml"
API_1111 = FIXTURES / "arxiv" / "id_list_1111.2011v2.xml"
API_2104 = FIXTURES / "arxiv" / "id_2104.12255v1_s0_m100_6ae69987ffe1.json"
API_EMPTY = FIXTURES / "arxiv" / "id_0000.0000_s0_m100_8b51d9633a68.json"
API_ERROR = FIXTURES / "arxiv" / "id_abc_s0_m100_b79c8dcf6bc3.json"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
FEED_PATH = "/atom/cs.AI"
API_PATH = "/api/query"

# Not recorded: the shape of the feed rss.arxiv.org serves for an unknown category, as the
# zotero-arxiv-daily and similar clients detect it (by the feed title).
ERROR_FEED = b"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>http://rss.arxiv.org/atom/cs.XX</id>
<title>Feed error for query: cs.XX</title><updated>2025-08-20T04:00:00+00:00</updated></feed>"""


@pytest.fixture
def replay_server():
    """A real HTTP server on 127.0.0.1 for this test (see tests/httpserver.py)."""
    with ReplayServer() as server:
        yield server


def _api_body_for(arxiv_id: str) -> bytes:
    """The recorded API answer for 1111.2011v2, re-keyed to ``arxiv_id`` (test-only edit)."""
    return API_1111.read_bytes().replace(b"1111.2011v2", arxiv_id.encode())


def _settings(settings, server: ReplayServer, **extra):
    return settings.model_copy(
        update={
            "arxiv_feed_url": server.url,
            "arxiv_api_url": server.url,
            "hf_base_url": server.url,
            "arxiv_categories": ["cs.AI"],
            **extra,
        }
    )


# --- parsing the recorded responses, field by field ---


def test_listing_keeps_new_entries_and_drops_cross_lists_by_default() -> None:
    papers, skipped, dropped = parse_listing(LISTING.read_bytes(), cross_lists=False)
    assert [p.arxiv_id for p in papers] == ["2508.14001", "2508.14002"]
    assert skipped == [] and dropped == 5
    first = papers[0]
    assert first.title == "Neural Architecture Search for Efficient Transformers"
    assert first.abstract == (
        "We propose a neural architecture search method for efficient transformers."
    )  # the "arXiv:... Announce Type: new Abstract:" preamble is gone
    assert first.authors == ("Alice Smith", "Bob Jones")
    assert first.categories == ("cs.AI", "cs.LG")
    assert first.listed_at == datetime(2025, 8, 20, 4, 0, tzinfo=UTC)  # 00:00 -04:00
    assert first.published_at is None and first.sources == ("arxiv",)


def test_listing_with_cross_lists_keeps_them_primary_category_first() -> None:
    papers, _, dropped = parse_listing(LISTING.read_bytes(), cross_lists=True)
    assert len(papers) == 7 and dropped == 0
    align = papers[0]
    assert align.arxiv_id == "2508.13426" and align.categories == ("cs.CL", "cs.AI")
    assert align.authors == ("Chunhua Liu", "Kabir Manandhar Shrestha", "Sukai Huang")
    assert align.abstract.startswith("As large language models (LLMs) increasingly mediate")


def test_replacements_are_dropped() -> None:
    body = LISTING.read_bytes().replace(
        b"<arxiv:announce_type>new</arxiv:announce_type>",
        b"<arxiv:announce_type>replace</arxiv:announce_type>",
        1,
    )
    body = body.replace(b"<arxiv:announce_type>cross<", b"<arxiv:announce_type>replace-cross<", 1)
    papers, _, dropped = parse_listing(body, cross_lists=True)
    assert [p.arxiv_id for p in papers] == [
        "2508.13428",
        "2508.13429",
        "2508.13434",
        "2508.13435",
        "2508.14002",
    ]
    assert dropped == 2


def test_feed_error_for_query_is_a_clear_error() -> None:
    with pytest.raises(
        DigestError, match="listing feed rejected the query: Feed error for query: cs.XX"
    ):
        parse_listing(ERROR_FEED, cross_lists=False)


def test_api_fixtures_field_by_field() -> None:
    (paper,) = parse_api_feed(API_1111.read_bytes()).values()
    assert paper.arxiv_id == "1111.2011"
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert paper.abstract.startswith(
        "Theoretical description of anisotropic systems, such as layered superconductors"
    )
    assert paper.authors == ("James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic")
    assert paper.published_at == datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert paper.categories == ("cond-mat.str-el", "cond-mat.stat-mech")
    recorded = json.loads(API_2104.read_text())
    (other,) = parse_api_feed(recorded["body"].encode()).values()
    assert (other.arxiv_id, other.title, other.authors) == (
        "2104.12255",
        "0",
        ("Quan Thoi Minh Nguyen",),
    )
    assert other.categories == ("cs.CR",)
    assert parse_api_feed(json.loads(API_EMPTY.read_text())["body"].encode()) == {}


def test_xml_with_entities_is_refused() -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&b;</title></feed>"""
    with pytest.raises(DigestError, match="forbidden XML"):
        parse_listing(bomb, cross_lists=False)
    with pytest.raises(DigestError, match="not valid XML"):
        parse_listing(LISTING.read_bytes()[:2000], cross_lists=False)


# --- the source over HTTP ---


def test_fetch_reads_the_feed_and_enriches_from_the_api(settings, replay_server) -> None:
    replay_server.route(FEED_PATH, Reply.file(LISTING))
    replay_server.route(API_PATH, Reply(200, _api_body_for("2508.14001v1")))
    result = make_source("arxiv", _settings(settings, replay_server)).fetch(None)
    assert result.requests == 2 and result.notes == []
    (query,) = replay_server.hits(API_PATH)
    assert query.query["id_list"] == ["2508.14001,2508.14002"]
    assert query.query["max_results"] == ["2"]
    enriched, plain = result.papers
    # From the API: submission date, author list, categories. From the feed: the rest.
    assert enriched.published_at == datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert enriched.authors == ("James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic")
    assert enriched.title == "Neural Architecture Search for Efficient Transformers"
    assert plain.published_at is None and plain.authors == ("Carol White", "Dave Brown")


def test_feed_url_joins_the_categories(settings, replay_server) -> None:
    replay_server.route("/atom/cs.AI+cs.CL", Reply.file(LISTING))
    replay_server.route(API_PATH, Reply.recorded(API_EMPTY))
    config = _settings(settings, replay_server, arxiv_categories=["cs.AI", "cs.CL"])
    assert len(make_source("arxiv", config).fetch(None).papers) == 2
    assert replay_server.requests[0].raw_path == "/atom/cs.AI+cs.CL"
    assert replay_server.requests[0].headers["User-Agent"].startswith("digest/")


@pytest.mark.parametrize("status", [200, 400])
def test_feed_error_over_http_fails_the_source(settings, replay_server, status: int) -> None:
    replay_server.route(FEED_PATH, Reply(status, ERROR_FEED))
    with pytest.raises(DigestError, match="Feed error for query: cs.XX"):
        make_source("arxiv", _settings(settings, replay_server)).fetch(None)
    assert replay_server.hits(API_PATH) == []


def test_feed_http_error_without_a_feed(settings, replay_server) -> None:
    replay_server.route(FEED_PATH, Reply(404, b"Not Found"))
    with pytest.raises(DigestError, match=r"/atom/cs.AI answered HTTP 404$"):
        make_source("arxiv", _settings(settings, replay_server)).fetch(None)


def test_api_400_error_feed_is_a_clear_error(settings, replay_server) -> None:
    replay_server.route(API_PATH, Reply.recorded(API_ERROR))
    api = ArxivApi(_settings(settings, replay_server))
    with PoliteClient(name="arxiv") as http, pytest.raises(DigestError) as info:
        api.lookup(http, ["abc"])
    assert str(info.value) == "arxiv: the API refused the query: incorrect id format for abc"
    assert http.requests == 1  # a 400 is an answer, not a blip: no retry


def test_api_failure_keeps_the_listing_and_says_so(settings, replay_server) -> None:
    replay_server.route(FEED_PATH, Reply.file(LISTING))
    replay_server.route(API_PATH, Reply.recorded(API_ERROR))
    result = make_source("arxiv", _settings(settings, replay_server)).fetch(None)
    assert len(result.papers) == 2
    assert result.notes == [
        "kept the listing without enrichment: arxiv: the API refused the query: "
        "incorrect id format for abc"
    ]


def test_api_is_asked_in_batches_with_a_pause_between(settings, replay_server) -> None:
    replay_server.route(API_PATH, Reply.recorded(API_EMPTY))
    sleeps: list[float] = []
    api = ArxivApi(_settings(settings, replay_server, arxiv_api_interval=3.0), sleep=sleeps.append)
    ids = [f"2508.{10000 + i}" for i in range(150)]
    with PoliteClient(name="arxiv") as http:
        assert api.lookup(http, ids) == {}
    sizes = [len(h.query["id_list"][0].split(",")) for h in replay_server.hits(API_PATH)]
    assert sizes == [100, 50]
    assert len(sleeps) == 1 and 2.0 < sleeps[0] <= 3.0


def test_an_empty_announcement_is_an_empty_result(settings, replay_server) -> None:
    body = LISTING.read_bytes()
    empty = body[: body.index(b"<entry>")] + b"</feed>"
    replay_server.route(FEED_PATH, Reply(200, empty))
    result = make_source("arxiv", _settings(settings, replay_server)).fetch(None)
    assert result.papers == [] and result.requests == 1  # nothing to enrich: no API call


# --- one paper, one row ---


def test_same_paper_from_arxiv_and_hf_merges_into_one_row(
    settings, replay_server, store: Store
) -> None:
    items = json.loads(HF_2024.read_text())[:1]
    items[0]["paper"]["id"] = "2508.14001"  # the HF listing of the arXiv paper in the feed
    replay_server.route(FEED_PATH, Reply.file(LISTING))
    replay_server.route(API_PATH, Reply.recorded(API_EMPTY))
    replay_server.route("/api/daily_papers", Reply.json(items))
    config = _settings(settings, replay_server)
    first = store.upsert_papers(make_source("arxiv", config).fetch(None).papers)
    second = store.upsert_papers(make_source("hf", config).fetch(None).papers)
    assert first.new == ["2508.14001", "2508.14002"] and second.merged == ["2508.14001"]
    paper = store.get_paper("2508.14001")
    assert paper.sources == ("arxiv", "hf")
    assert paper.categories == ("cs.AI", "cs.LG")  # from arXiv, kept
    assert paper.upvotes == 64 and paper.comments == 3  # from HF, added
    assert paper.url == "https://huggingface.co/papers/2508.14001"
    assert store.count_papers() == 2


def test_versioned_and_plain_ids_are_the_same_paper(store: Store) -> None:
    items = json.loads(HF_2024.read_text())[:1]
    versioned = json.loads(json.dumps(items))
    versioned[0]["paper"]["id"] = "2410.17243v2"
    store.upsert_papers(from_hf_items(items, source="hf").papers)
    again = store.upsert_papers(from_hf_items(versioned, source="hf").papers)
    assert again.unchanged == ["2410.17243"] and store.count_papers() == 1
