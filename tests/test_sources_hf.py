"""The hf source and the polite HTTP client against a real local server replaying recordings."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from httpserver import ReplayServer, Reply

from digest.errors import DigestError
from digest.sources import SourceResult, make_source
from digest.sources.hf import PAGE_SIZE
from digest.sources.http import PoliteClient, user_agent

FIXTURES = Path(__file__).parent / "fixtures"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
HF_2026 = FIXTURES / "hf_daily_papers_recent.json"
ENDPOINT = "/api/daily_papers"


@pytest.fixture
def replay_server():
    """A real HTTP server on 127.0.0.1 for this test (see tests/httpserver.py)."""
    with ReplayServer() as server:
        yield server


def _settings(settings, server: ReplayServer, **extra):
    # One day's list unless a test is about the lookback; the arXiv API (for categories) is
    # the same local server, which answers 404 where a test gives it nothing to replay.
    update = {"hf_base_url": server.url, "arxiv_api_url": server.url, "hf_lookback_days": 0}
    return settings.model_copy(update={**update, **extra})


def _client(sleeps: list[float], **options) -> PoliteClient:
    """A client whose waits are recorded instead of slept, so fault tests stay instant."""
    options.setdefault("timeout", 2.0)
    options.setdefault("retries", 3)
    return PoliteClient(name="hf", backoff_base=0.01, sleep=sleeps.append, **options)


def _fetch(settings, server, day=date(2024, 10, 25), client=None, **extra) -> SourceResult:
    return make_source("hf", _settings(settings, server, **extra), client=client).fetch(day)


def test_fetches_the_day_with_the_documented_query(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2024))
    result = _fetch(settings, replay_server)
    assert len(result.papers) == 29 and result.skipped == [] and result.requests == 1
    (request,) = replay_server.hits(ENDPOINT)
    assert request.query == {
        "date": ["2024-10-25"],
        "sort": ["trending"],
        "limit": [str(PAGE_SIZE)],
        "p": ["0"],
    }
    assert request.headers["User-Agent"] == user_agent(str(settings.base_url))
    assert request.headers["User-Agent"].startswith("digest/")
    first = result.papers[0]
    assert (first.arxiv_id, first.upvotes, first.sources) == ("2410.17243", 64, ("hf",))
    assert first.url == "https://huggingface.co/papers/2410.17243"


def test_today_utc_when_no_day_is_given(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2026))
    result = _fetch(settings, replay_server, day=None)
    assert [p.arxiv_id for p in result.papers] == ["2602.23229"]
    today = datetime.now(UTC).date().isoformat()
    assert replay_server.hits(ENDPOINT)[0].query["date"] == [today]


def test_pages_until_a_short_page_and_drops_papers_seen_twice(settings, replay_server) -> None:
    items = json.loads(HF_2024.read_text())
    full = [dict(items[i % 29], paper={**items[i % 29]["paper"], "id": f"2410.{10000 + i}"})
            for i in range(PAGE_SIZE)]  # fmt: skip
    # A paper moving up the trending order while we page shows up on both pages.
    replay_server.route(ENDPOINT, Reply.json(full), Reply.json([full[-1], items[0]]))
    result = _fetch(settings, replay_server)
    assert [r.query["p"] for r in replay_server.hits(ENDPOINT)] == [["0"], ["1"]]
    assert len(result.papers) == PAGE_SIZE + 1 and result.requests == 2
    assert result.skipped == []  # paging drift is not a bad record


def test_request_budget_keeps_the_pages_already_read(settings, replay_server) -> None:
    items = json.loads(HF_2024.read_text())
    full = [dict(items[0], paper={**items[0]["paper"], "id": f"2410.{10000 + i}"})
            for i in range(PAGE_SIZE)]  # fmt: skip
    replay_server.route(ENDPOINT, Reply.json(full))  # every page full: would page forever
    result = _fetch(settings, replay_server, http_max_requests=3)
    assert len(replay_server.hits(ENDPOINT)) == 3 and len(result.papers) == PAGE_SIZE
    assert "DIGEST_HTTP_MAX_REQUESTS=3" in result.notes[0]


def test_an_empty_day_is_an_empty_result_not_an_error(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply.json([]))
    result = _fetch(settings, replay_server, day=date(2024, 10, 26))
    assert result.papers == [] and result.skipped == []


def test_429_then_200_waits_as_retry_after_says(settings, replay_server) -> None:
    replay_server.route(
        ENDPOINT, Reply(429, b"slow down", {"Retry-After": "7"}), Reply.file(HF_2024)
    )
    sleeps: list[float] = []
    result = _fetch(settings, replay_server, client=_client(sleeps))
    assert len(result.papers) == 29 and result.requests == 2
    assert sleeps == [7.0]


def test_retry_after_as_an_http_date(settings, replay_server) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    replay_server.route(ENDPOINT, Reply(503, headers={"Retry-After": when}), Reply.file(HF_2026))
    sleeps: list[float] = []
    _fetch(settings, replay_server, client=_client(sleeps))
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 30


def test_500s_until_the_retry_budget_ends(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply(500, b"boom"))
    sleeps: list[float] = []
    with pytest.raises(DigestError) as info:
        _fetch(settings, replay_server, client=_client(sleeps, retries=3))
    assert len(replay_server.hits(ENDPOINT)) == 4  # one try and three retries
    message = str(info.value)
    assert (
        message.startswith("hf: GET ") and "HTTP 500" in message and "after 4 attempts" in message
    )
    # Exponential backoff with jitter: each wait in [step/2, step], the step doubling.
    for attempt, wait in enumerate(sleeps):
        step = 0.01 * 2**attempt
        assert step / 2 <= wait <= step
    assert len(sleeps) == 3


def test_a_response_slower_than_the_timeout(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply(200, b"[]", delay=1.0))
    sleeps: list[float] = []
    with pytest.raises(DigestError, match="timed out after 2 attempts"):
        _fetch(settings, replay_server, client=_client(sleeps, timeout=0.2, retries=1))
    assert len(replay_server.hits(ENDPOINT)) == 2


def test_connection_refused_is_retried_then_reported(settings) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = settings.model_copy(update={"hf_base_url": f"http://127.0.0.1:{port}"})
    sleeps: list[float] = []
    with pytest.raises(DigestError, match=r"connection failed \(ConnectError\) after 3 attempts"):
        make_source("hf", config, client=_client(sleeps, retries=2)).fetch(None)
    assert len(sleeps) == 2


def test_settings_drive_timeout_and_retries(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply(502))
    config = _settings(settings, replay_server, http_retries=0)
    with pytest.raises(DigestError, match="HTTP 502 Bad Gateway after 1 attempt$"):
        make_source("hf", config).fetch(None)
    assert len(replay_server.hits(ENDPOINT)) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, HF_2024.read_bytes()[:3000]), "did not answer JSON"),
        (Reply.json({"error": "Invalid date"}, status=400), 'HTTP 400: {"error": "Invalid date"}'),
        (Reply.json({"papers": []}), "answered a JSON dict, expected a list"),
        (Reply(200, b"<html>maintenance</html>"), "did not answer JSON: <html>maintenance</html>"),
    ],
)
def test_a_wholly_broken_response_is_one_clear_error(
    settings, replay_server, reply: Reply, message: str
) -> None:
    replay_server.route(ENDPOINT, reply)
    with pytest.raises(DigestError) as info:
        _fetch(settings, replay_server)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_items_in_a_response_are_skipped_and_reported(settings, replay_server) -> None:
    items = json.loads(HF_2024.read_text())[:3]
    items[1]["paper"]["upvotes"] = "many"
    replay_server.route(ENDPOINT, Reply.json(items))
    result = _fetch(settings, replay_server)
    assert len(result.papers) == 2
    assert [(s.ref, s.reason) for s in result.skipped] == [
        ("2024-10-25 p0#1 (2410.16251)", "upvotes: expected a whole number >= 0, got 'many'")
    ]


def test_an_injected_httpx_client_is_used_and_left_open(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2026))
    with httpx.Client(headers={"User-Agent": "custom/1"}) as client:
        _fetch(settings, replay_server, client=client)
        assert not client.is_closed
    assert replay_server.hits(ENDPOINT)[0].headers["User-Agent"] == "custom/1"


def test_an_injected_default_httpx_client_still_says_who_we_are(settings, replay_server) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2026))
    with httpx.Client() as client:
        _fetch(settings, replay_server, client=client)
    assert replay_server.hits(ENDPOINT)[0].headers["User-Agent"].startswith("digest/")


def test_an_injected_polite_client_serves_several_fetches_within_one_budget(
    settings, replay_server
) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2026))
    sleeps: list[float] = []
    with _client(sleeps, max_requests=2) as http:
        source = make_source("hf", _settings(settings, replay_server), client=http)
        assert source.fetch(None).requests == 1
        assert source.fetch(None).requests == 1
        with pytest.raises(DigestError, match="stopped after 2 requests"):
            source.fetch(None)


def test_collecting_the_same_day_twice_changes_nothing(settings, replay_server, store) -> None:
    replay_server.route(ENDPOINT, Reply.file(HF_2024))
    source = make_source("hf", _settings(settings, replay_server))
    first = store.upsert_papers(source.fetch(date(2024, 10, 25)).papers)
    seen = store.get_paper("2410.17243").first_seen_at
    second = store.upsert_papers(source.fetch(date(2024, 10, 25)).papers)
    assert len(first.new) == 29 and second.new == [] and second.merged == []
    assert len(second.unchanged) == 29 and store.count_papers() == 29
    assert store.get_paper("2410.17243").first_seen_at == seen


def test_earlier_days_are_read_again_for_papers_added_late(settings, replay_server) -> None:
    items = json.loads(HF_2024.read_text())
    replay_server.route(ENDPOINT, Reply.json(items[:20]), query={"date": "2024-10-25"})
    replay_server.route(ENDPOINT, Reply.json([]), query={"date": "2024-10-24"})
    replay_server.route(ENDPOINT, Reply.json(items[15:29]), query={"date": "2024-10-23"})
    result = _fetch(settings, replay_server, hf_lookback_days=2)
    dates = [h.query["date"][0] for h in replay_server.hits(ENDPOINT)]
    assert dates == ["2024-10-25", "2024-10-24", "2024-10-23"] and result.requests == 3
    assert len(result.papers) == 29 and result.skipped == []  # one paper per id


def test_a_paper_added_to_yesterdays_list_after_the_run_is_collected_next_day(
    settings, replay_server, store
) -> None:
    items = json.loads(HF_2024.read_text())
    config = _settings(settings, replay_server, hf_lookback_days=1)
    replay_server.route(ENDPOINT, Reply.json(items[:10]), query={"date": "2024-10-25"})
    replay_server.route(ENDPOINT, Reply.json([]), query={"date": "2024-10-24"})
    morning = store.upsert_papers(make_source("hf", config).fetch(date(2024, 10, 25)).papers)
    # Later that day HF lists five more papers under 2024-10-25.
    replay_server.route(ENDPOINT, Reply.json(items[:15]), query={"date": "2024-10-25"})
    replay_server.route(ENDPOINT, Reply.json(items[15:20]), query={"date": "2024-10-26"})
    next_day = store.upsert_papers(make_source("hf", config).fetch(date(2024, 10, 26)).papers)
    assert len(morning.new) == 10
    assert len(next_day.new) == 10 and len(next_day.unchanged) == 10
    assert store.count_papers() == 20
