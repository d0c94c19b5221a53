"""Seeding likes from what a reader already has: pasted ids or URLs, a BibTeX file (Zotero,
arXiv, Better BibTeX), a Zotero CSL-JSON export; the ids looked up among stored papers, then
in the arXiv API (a real local HTTP server replaying recorded arXiv responses), best effort.
Also the profile rules the web page, CLI and import share (digest.subscribers.profile)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from digest.config import Settings
from digest.models import Frequency, Paper, Subscriber
from digest.store import Store
from digest.subscribers import seeding
from digest.subscribers.profile import (
    ProfileError,
    parse_arxiv_id,
    parse_blend,
    parse_empty_days,
    parse_hour,
    parse_timezone,
)
from tests.conftest import FIXTURES
from tests.httpserver import ReplayServer, Reply

LIBRARY = FIXTURES / "library"
ARXIV = FIXTURES / "arxiv"
STORED = Paper(
    arxiv_id="2410.17243",
    title="Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss",
    authors=("Zesen Cheng", "Hang Zhang"),
    sources=("hf",),
)


def arxiv_feed() -> bytes:
    """One API answer holding the recorded entries of 2104.12255 and 1111.2011."""
    first = json.loads((ARXIV / "id_2104.12255v1_s0_m100_6ae69987ffe1.json").read_text())["body"]
    second = (ARXIV / "id_list_1111.2011v2.xml").read_text()
    entry = re.search(r"<entry>.*</entry>", second, re.S)[0]
    return first.replace("</feed>", entry + "\n</feed>").encode()


@pytest.fixture
def arxiv() -> Iterator[ReplayServer]:
    """The arXiv API on 127.0.0.1, answering every id query with the recorded entries."""
    with ReplayServer() as server:
        server.route(
            "/api/query", Reply(200, arxiv_feed(), {"Content-Type": "application/atom+xml"})
        )
        yield server


def using(settings: Settings, server: ReplayServer) -> Settings:
    return settings.model_copy(update={"arxiv_api_url": server.url, "arxiv_api_interval": 0})


# --- the shared rules ------------------------------------------------------------------------


def test_profile_rules_take_what_people_type_and_refuse_the_rest_in_one_line() -> None:
    assert parse_blend("0.7") == 0.7 and parse_blend(" ") is None and parse_blend(1) == 1.0
    assert parse_hour("07") == 7 and parse_hour("") is None
    assert parse_timezone("Australia/Adelaide") == "Australia/Adelaide"
    assert parse_timezone("") is None and parse_empty_days("ROLL") == "roll"
    for url in (
        "2411.01234",
        "arXiv:2411.01234v3",
        "https://arxiv.org/abs/2411.01234v2",
        "https://arxiv.org/pdf/2411.01234v2.pdf",
        "https://huggingface.co/papers/2411.01234",
        "https://doi.org/10.48550/arXiv.2411.01234",
        "<https://arxiv.org/abs/2411.01234?context=cs>",
    ):
        assert parse_arxiv_id(url) == "2411.01234", url
    assert parse_arxiv_id("hep-th/9901001v2") == "hep-th/9901001"
    bad = [
        (parse_blend, "1.5", "blend must be a number from 0 to 1, not '1.5'"),
        (parse_blend, "nan", "blend must be a number from 0 to 1, not 'nan'"),
        (parse_hour, "24", "hour must be a whole number from 0 to 23, not '24'"),
        (parse_timezone, "Mars/Olympus", "not a time zone: 'Mars/Olympus'"),
        (parse_timezone, "../../etc/passwd", "not a time zone: '../../etc/passwd'"),
        (parse_empty_days, "sometimes", "empty days must be skip or roll, not 'sometimes'"),
        (parse_arxiv_id, "https://example.org/x" * 20, "not an arXiv id or URL: 'https://"),
    ]
    for rule, text, message in bad:
        with pytest.raises(ProfileError) as caught:
            rule(text)
        assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
        assert isinstance(caught.value, ValueError)


# --- finding ids -----------------------------------------------------------------------------


def test_ids_in_a_zotero_bibtex_export() -> None:
    found = seeding.ids_in_library((LIBRARY / "zotero.bib").read_bytes(), "zotero.bib")
    # URL / DOI / note "arXiv:X [cs]" / note "arXiv: X" on a journal article; the CVPR paper
    # names no arXiv id and is passed over.
    assert found.ids == ["2104.12255", "1111.2011", "2410.17243"]
    assert (found.entries, found.without_id, found.unreadable) == (4, 1, [])


def test_ids_in_arxiv_and_better_bibtex_exports_past_a_broken_entry() -> None:
    found = seeding.ids_in_library((LIBRARY / "arxiv.bib").read_bytes(), "arxiv.bib")
    # eprint + archivePrefix, eprint + eprinttype (with a version), an ISBN eprint is no id.
    assert found.ids == ["2410.17243", "2104.12255", "1111.2011"]
    assert found.without_id == 1
    assert len(found.unreadable) == 1 and found.unreadable[0].startswith(
        "line 35: Unexpected block start"
    )


def test_ids_in_a_zotero_csl_json_export() -> None:
    found = seeding.ids_in_library((LIBRARY / "zotero-csl.json").read_bytes(), "my.json")
    assert found.ids == ["2104.12255", "1111.2011", "2410.16251"]
    assert found.without_id == 1


def test_pasted_ids_and_urls() -> None:
    text = "2410.17243\n https://huggingface.co/papers/2410.16251 ,arxiv.org/pdf/2104.12255v1\n"
    assert seeding.ids_in_paste(text).ids == ["2410.17243", "2410.16251", "2104.12255"]
    many = seeding.ids_in_paste(" ".join(f"2411.{i:05d}" for i in range(501)))
    assert len(many.ids) == 500 and many.left_out == 1  # the first 500, and it says so


def test_files_and_pastes_without_ids_are_one_line_errors() -> None:
    cases = [
        (lambda: seeding.ids_in_paste("2410.17243 hello"), "not an arXiv id or URL: 'hello'"),
        (lambda: seeding.ids_in_paste("x" * 20_001), "paste at most 20,000 characters"),
        (lambda: seeding.ids_in_library(b"", "a.bib"), "'a.bib' is empty"),
        (lambda: seeding.ids_in_library(b"[1, 2", "a.json"), "'a.json' is not valid JSON"),
        (lambda: seeding.ids_in_library(b"[" * 100_000, "a.json"), "'a.json' is not valid JSON"),
        (
            lambda: seeding.ids_in_library(b"@book{k, title={A}}", "b.bib"),
            "no arXiv ids found in 'b.bib' (1 entry, none naming an arXiv paper)",
        ),
        (
            lambda: seeding.ids_in_library(b"x" * 2_000_001, "big.bib"),
            "'big.bib' is 2,000,001 bytes; at most 2,000,000",
        ),
    ]
    for call, message in cases:
        with pytest.raises(Exception) as caught:
            call()
        assert str(caught.value).startswith(message), str(caught.value)
        assert "\n" not in str(caught.value)


# --- looking them up -------------------------------------------------------------------------


def test_stored_papers_are_liked_and_only_missing_ones_go_to_arxiv_in_one_batch(
    settings: Settings, store: Store, arxiv: ReplayServer
) -> None:
    store.upsert_papers([STORED])
    sub = store.add_subscriber(Subscriber("ada@example.org", dislikes=("2104.12255",)))
    ids = ["2410.17243", "1111.2011", "0000.0000", "2104.12255"]
    report = seeding.seed_likes(store, using(settings, arxiv), sub.id, ids)
    assert report.liked == ["2410.17243", "1111.2011"]
    assert report.not_found == ["0000.0000"]  # arXiv has no such paper: left out
    assert report.already == 1  # the dislike stands
    (asked,) = arxiv.hits("/api/query")
    assert asked.query["id_list"] == ["1111.2011,0000.0000"]
    now = store.get_subscriber(sub.id)
    assert now.likes == ("2410.17243", "1111.2011") and now.dislikes == ("2104.12255",)
    assert store.get_paper("1111.2011") is None  # not stored: it would be "new" in an edition
    # ... but its text is kept for "for me", and no edition ever lists it.
    kept = store.get_papers(["1111.2011", "0000.0000"])
    assert list(kept) == ["1111.2011"] and kept["1111.2011"].title and kept["1111.2011"].abstract
    assert "1111.2011" not in {p.arxiv_id for p in store.unpublished_papers(Frequency.DAILY)}


def test_an_arxiv_outage_keeps_the_ids_unchecked_rather_than_losing_them(
    settings: Settings, store: Store
) -> None:
    sub = store.add_subscriber(Subscriber("ada@example.org"))
    with ReplayServer() as down:
        down.route("/api/query", Reply(503, b"busy"))
        report = seeding.seed_likes(store, using(settings, down), sub.id, ["1111.2011"])
        assert len(down.hits("/api/query")) == 1  # no retries: the reader is waiting
    assert report.liked == ["1111.2011"] and report.unchecked == ["1111.2011"]
    assert "HTTP 503" in report.unchecked_reason


def test_the_lookup_stops_at_its_time_bound_and_keeps_the_rest(
    settings: Settings, store: Store, arxiv: ReplayServer
) -> None:
    sub = store.add_subscriber(Subscriber("ada@example.org"))
    ids = [f"2411.{i:05d}" for i in range(250)]  # three batches of at most 100
    ticks = iter([0.0, seeding.LOOKUP_SECONDS + 1])
    report = seeding.seed_likes(
        store, using(settings, arxiv), sub.id, ids, clock=lambda: next(ticks)
    )
    assert len(arxiv.hits("/api/query")) == 1
    assert report.unchecked == ids[100:] and report.unchecked_reason == "it took too long"
    assert report.not_found == ids[:100] and report.liked == ids[100:]


def test_a_profile_holds_at_most_max_ratings(
    settings: Settings, store: Store, arxiv: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seeding, "MAX_RATINGS", 2)
    store.upsert_papers([STORED])
    sub = store.add_subscriber(Subscriber("ada@example.org", likes=("2104.12255",)))
    report = seeding.seed_likes(store, using(settings, arxiv), sub.id, ["2410.17243", "1111.2011"])
    assert report.liked == ["2410.17243"] and report.over_cap == 1
