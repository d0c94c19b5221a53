"""Bad values in a record skip that record with its reason, and the rest lands (issue 12 #3).

Every path that parses records meets the same values: the file source (an HF JSON list and
JSON Lines), the hf source through a real local HTTP server, the arXiv listing and API feeds,
and `digest collect` into SQLite and into a throw-away PostgreSQL database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from httpserver import ReplayServer, Reply

from digest.cli import cli
from digest.errors import DigestError
from digest.sources import Skipped, make_source
from digest.sources.arxiv import parse_listing
from digest.sources.arxiv_api import parse_api_feed
from digest.sources.jsonfile import MAX_FILE_BYTES, MAX_JSON_DEPTH, load_papers
from digest.sources.normalize import MAX_COUNT
from digest.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
LISTING = FIXTURES / "arxiv" / "cs.AI_2025-08-20.xml"
API_1111 = FIXTURES / "arxiv" / "id_list_1111.2011v2.xml"
HUGE = "9" * 5000  # more digits than Python converts to int (4,300): json.loads raises ValueError

# (fields to set on the second item, the start of the reason it is skipped for)
BAD_VALUES = [
    pytest.param(
        {"paper.publishedAt": "9999-12-31T23:59:59-05:00"},
        "publishedAt: '9999-12-31T23:59:59-05:00' is outside the years 1900-2999",
        id="date-past-9999-in-utc",
    ),
    pytest.param(
        {"submittedOnDailyAt": "0001-01-01T00:00:00+05:00"},
        "submittedOnDailyAt: '0001-01-01T00:00:00+05:00' is outside the years 1900-2999",
        id="date-before-year-1-in-utc",
    ),
    pytest.param(
        {"paper.upvotes": 10**30},
        f"upvotes: 1000000000000000000000000000000 is more than {MAX_COUNT}",
        id="upvotes-10e30",
    ),
    pytest.param(
        {"paper.upvotes": 2**31}, f"upvotes: 2147483648 is more than {MAX_COUNT}", id="upvotes-2e31"
    ),
    pytest.param(
        {"numComments": 2**31},
        f"numComments: 2147483648 is more than {MAX_COUNT}",
        id="comments-2e31",
    ),
    pytest.param(
        {"paper.githubStars": 2**40},
        f"githubStars: 1099511627776 is more than {MAX_COUNT}",
        id="stars-2e40",
    ),
    pytest.param(
        {"paper.upvotes": "HUGE"},
        f"upvotes: a number of over 100 digits is more than {MAX_COUNT}",
        id="upvotes-5000-digits",
    ),
    pytest.param(
        {"paper.projectPage": "https://example.org/\ud800"},
        "projectPage: not an http(s) URL",
        id="surrogate-in-url",
    ),
]


def _set(item: dict, dotted: str, value: object) -> None:
    *path, key = dotted.split(".")
    for part in path:
        item = item[part]
    item[key] = value


def _hf_body(fields: dict[str, object]) -> bytes:
    """Three recorded HF items as JSON text, the second with ``fields`` set (HUGE: 5000 nines)."""
    items = json.loads(HF_2024.read_text())[:3]
    for dotted, value in fields.items():
        _set(items[1], dotted, value)
    return json.dumps(items).replace('"HUGE"', HUGE).encode()


def _assert_one_skipped(skipped: list[Skipped], ref: str, reason: str) -> None:
    (skip,) = skipped
    assert skip.ref == ref
    assert skip.reason.startswith(reason), skip.reason


# --- the file source: an HF JSON list ---


@pytest.mark.parametrize(("fields", "reason"), BAD_VALUES)
def test_file_hf_list_skips_the_bad_record_and_keeps_the_rest(
    tmp_path: Path, fields: dict, reason: str
) -> None:
    path = tmp_path / "papers.json"
    path.write_bytes(_hf_body(fields))
    result = load_papers(path)
    assert [p.arxiv_id for p in result.papers] == ["2410.17243", "2410.18533"]
    _assert_one_skipped(result.skipped, "#1 (2410.16251)", reason)


def test_largest_count_and_extreme_dates_inside_the_limits_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_bytes(
        _hf_body(
            {
                "paper.upvotes": MAX_COUNT,
                "paper.publishedAt": "1900-01-01T00:00:00Z",
                "submittedOnDailyAt": "2999-12-31T23:59:59+00:00",
            }
        )
    )
    result = load_papers(path)
    assert result.skipped == []
    paper = result.papers[1]
    assert paper.upvotes == MAX_COUNT
    assert paper.published_at == datetime(1900, 1, 1, tzinfo=UTC)
    assert paper.listed_at == datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    items = json.loads(HF_2024.read_text())[:2]
    items[0]["title"] = "Lone \ud800 surrogate"
    items[0]["paper"]["summary"] = "An abstract \udfff here."
    items[0]["paper"]["authors"][0]["name"] = "Ada \ud83d"
    path = tmp_path / "papers.json"
    path.write_text(json.dumps(items), encoding="utf-8")  # json escapes them as \ud800
    first, second = load_papers(path).papers
    assert first.title == "Lone \ufffd surrogate"
    assert first.abstract == "An abstract \ufffd here."
    assert first.authors[0] == "Ada \ufffd"
    assert second.title == items[1]["title"]  # a real pair (none here) or plain text is kept
    for text in (first.title, first.abstract, *first.authors):
        text.encode("utf-8")  # valid UTF-8: the store can write it


def test_a_surrogate_pair_is_one_character_not_two_replacements(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_text(
        '[{"title": "Rocket \\ud83d\\ude80 paper", "paper": {"id": "2410.17243"}}]',
        encoding="utf-8",
    )
    assert load_papers(path).papers[0].title == "Rocket \U0001f680 paper"


# --- the file source: JSON Lines ---


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"date": "9999-12-31T23:59:59-05:00"}, "date: '9999-12-31T23:59:59-05:00' is outside"),
        ({"date": "0001-01-01T00:00:00+05:00"}, "date: '0001-01-01T00:00:00+05:00' is outside"),
        ({"upvotes": 10**30}, f"upvotes: 1000000000000000000000000000000 is more than {MAX_COUNT}"),
        ({"upvotes": "HUGE"}, f"upvotes: a number of over 100 digits is more than {MAX_COUNT}"),
    ],
)
def test_json_lines_skip_the_bad_row_and_keep_the_rest(
    tmp_path: Path, row: dict, reason: str
) -> None:
    rows = [
        {"id": "2601.00001", "title": "First", "abstract": "A."},
        {"id": "2601.00002", "title": "Second", "abstract": "B.", **row},
        {"id": "2601.00003", "title": "Third \ud800", "abstract": "C."},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in rows).replace('"HUGE"', HUGE), encoding="utf-8"
    )
    result = load_papers(path)
    assert [p.arxiv_id for p in result.papers] == ["2601.00001", "2601.00003"]
    assert result.papers[1].title == "Third \ufffd"
    _assert_one_skipped(result.skipped, "line 2 (2601.00002)", reason)


# --- nesting depth: a documented limit, one line, never a RecursionError ---


def _nested(levels: int) -> str:
    """An HF item whose ``extra`` field nests the whole list ``levels`` deep."""
    inner = levels - 2  # the list and the item are two levels
    return (
        '[{"title": "Deep", "paper": {"id": "2410.17243"}, "extra": '
        + "[" * inner
        + "]" * inner
        + "}]"
    )


def test_a_list_nested_200000_deep_is_one_line_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000, encoding="utf-8")
    with pytest.raises(DigestError) as info:
        load_papers(path)
    assert str(info.value) == f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"


def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_text(_nested(MAX_JSON_DEPTH), encoding="utf-8")
    assert [p.title for p in load_papers(path).papers] == ["Deep"]
    path.write_text(_nested(MAX_JSON_DEPTH + 1), encoding="utf-8")
    with pytest.raises(DigestError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        load_papers(path)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_text(
        json.dumps([{"title": "[" * 500 + '"\\{', "paper": {"id": "2410.17243"}}]),
        encoding="utf-8",
    )
    assert load_papers(path).papers[0].title.startswith("[[[")


def test_a_deep_json_line_is_skipped_and_the_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    good = json.dumps({"id": "2601.00001", "title": "First", "abstract": "A."})
    path.write_text(f"{good}\n" + "[" * 200_000 + "\n", encoding="utf-8")
    result = load_papers(path)
    assert [p.arxiv_id for p in result.papers] == ["2601.00001"]
    assert result.skipped == [Skipped("line 2", f"nested deeper than {MAX_JSON_DEPTH} levels")]


def test_a_file_over_the_size_limit_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(DigestError) as info:
        load_papers(path)
    assert str(info.value) == (
        f"{path}: 209,715,201 bytes is more than a papers file may have (200 MB)"
    )


def test_collect_of_a_deep_file_is_one_line_and_exit_1(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["collect", "--file", str(path)], env={"DIGEST_DATABASE_URL": db_url}
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: file: failed: {path}: nested deeper than {MAX_JSON_DEPTH} levels\n"
    )


# --- the hf source, through a real local HTTP server ---


@pytest.fixture
def replay_server():
    """A real HTTP server on 127.0.0.1 for this test (see tests/httpserver.py)."""
    with ReplayServer() as server:
        yield server


def _hf_fetch(settings, server: ReplayServer):
    config = settings.model_copy(
        update={"hf_base_url": server.url, "arxiv_api_url": server.url, "hf_lookback_days": 0}
    )
    return make_source("hf", config).fetch(datetime(2024, 10, 25).date())


@pytest.mark.parametrize(("fields", "reason"), BAD_VALUES)
def test_hf_response_skips_the_bad_item_and_keeps_the_rest(
    settings, replay_server: ReplayServer, fields: dict, reason: str
) -> None:
    replay_server.route(
        "/api/daily_papers", Reply(200, _hf_body(fields), {"Content-Type": "application/json"})
    )
    result = _hf_fetch(settings, replay_server)
    assert [p.arxiv_id for p in result.papers] == ["2410.17243", "2410.18533"]
    _assert_one_skipped(result.skipped, "2024-10-25 p0#1 (2410.16251)", reason)


def test_hf_response_with_a_lone_surrogate_keeps_the_paper(
    settings, replay_server: ReplayServer
) -> None:
    items = json.loads(HF_2024.read_text())[:1]
    items[0]["title"] = "Broken \ud800 title"
    replay_server.route("/api/daily_papers", Reply.json(items))
    (paper,) = _hf_fetch(settings, replay_server).papers
    assert paper.title == "Broken \ufffd title"


def test_hf_response_nested_too_deep_is_one_line(settings, replay_server: ReplayServer) -> None:
    replay_server.route(
        "/api/daily_papers", Reply(200, b"[" * 200_000, {"Content-Type": "application/json"})
    )
    with pytest.raises(DigestError) as info:
        _hf_fetch(settings, replay_server)
    message = str(info.value)
    assert message.startswith("hf: http://127.0.0.1:")
    assert message.endswith(
        f"/api/daily_papers answered JSON nested deeper than {MAX_JSON_DEPTH} levels"
    )


# --- the arXiv source: dates in the listing and API feeds ---


def _listing_with(arxiv_id: str, published: str) -> bytes:
    """The recorded listing with one entry's <published> replaced (a test-only edit)."""
    head, sep, rest = LISTING.read_text().partition(f"<id>oai:arXiv.org:{arxiv_id}v1</id>")
    entry, end, tail = rest.partition("</entry>")
    start = entry.index("<published>") + len("<published>")
    stop = entry.index("</published>")
    return (head + sep + entry[:start] + published + entry[stop:] + end + tail).encode()


@pytest.mark.parametrize("published", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_arxiv_listing_entry_with_a_date_out_of_range_is_skipped(published: str) -> None:
    papers, skipped, _ = parse_listing(_listing_with("2508.14001", published), cross_lists=False)
    assert [p.arxiv_id for p in papers] == ["2508.14002"]
    _assert_one_skipped(
        skipped, "#5 (2508.14001v1)", f"published: {published!r} is outside the years 1900-2999"
    )


def test_arxiv_api_entry_with_a_date_out_of_range_adds_nothing() -> None:
    body = API_1111.read_text().replace("2011-11-08T18:48:36Z", "9999-12-31T23:59:59-05:00")
    assert parse_api_feed(body.encode()) == {}


def test_arxiv_feed_with_a_surrogate_reference_is_one_clear_error() -> None:
    body = LISTING.read_text().replace("Mitigating Easy", "Mitigating &#xD800; Easy")
    with pytest.raises(DigestError, match="arxiv: the listing feed is not valid XML"):
        parse_listing(body.encode(), cross_lists=False)


# --- the store: `digest collect` into SQLite and PostgreSQL, read back in other zones ---


def test_collect_stores_the_good_records_on_both_databases(any_db_url: str, tmp_path: Path) -> None:
    items = json.loads(HF_2024.read_text())[:6]
    _set(items[1], "paper.upvotes", 2**31)  # one past PostgreSQL's integer
    _set(items[2], "paper.publishedAt", "9999-12-31T23:59:59-05:00")
    _set(items[3], "paper.upvotes", "HUGE")
    # Kept: the largest count both databases hold, the extreme dates allowed, a lone surrogate.
    _set(items[4], "paper.upvotes", MAX_COUNT)
    _set(items[4], "paper.githubStars", MAX_COUNT)
    _set(items[4], "paper.publishedAt", "2999-12-31T23:59:59Z")
    _set(items[5], "title", "Lone \ud800 surrogate")
    _set(items[5], "paper.publishedAt", "1900-01-01T00:00:00Z")
    path = tmp_path / "papers.json"
    path.write_text(json.dumps(items).replace('"HUGE"', HUGE), encoding="utf-8")

    result = CliRunner().invoke(
        cli,
        ["collect", "--file", str(path)],
        env={"DIGEST_DATABASE_URL": any_db_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "file: fetched 6, new 3, merged 0, unchanged 0, skipped 3" in result.stdout
    assert f"skipped #1 (2410.16251): upvotes: 2147483648 is more than {MAX_COUNT}" in (
        result.stdout
    )
    kept = [items[i]["paper"]["id"] for i in (0, 4, 5)]
    # PostgreSQL hands timestamps back in the session's zone: east and west of UTC, the
    # extreme dates allowed still read back (year 9999 in UTC would be year 10000 in Tokyo).
    zones = ["UTC"] if any_db_url.startswith("sqlite") else ["Asia/Tokyo", "America/New_York"]
    for zone in zones:
        url = any_db_url
        if not url.startswith("sqlite"):
            url = str(sa.make_url(url).update_query_dict({"options": f"-c timezone={zone}"}))
        store = Store(url)
        try:
            assert store.count_papers() == 3
            big, odd = store.get_paper(kept[1]), store.get_paper(kept[2])
        finally:
            store.close()
        assert (big.upvotes, big.github_stars) == (MAX_COUNT, MAX_COUNT)
        assert big.published_at == datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
        assert odd.title == "Lone \ufffd surrogate"
        assert odd.published_at == datetime(1900, 1, 1, tzinfo=UTC)


def test_an_id_in_other_scripts_digits_is_not_an_arxiv_id(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_bytes(
        _hf_body({"paper.id": "\u0662\u0664\u0661\u0660.\u0661\u0667\u0662\u0664\u0663"})
    )
    result = load_papers(path)
    assert [p.arxiv_id for p in result.papers] == ["2410.17243", "2410.18533"]
    assert result.skipped[0].reason.startswith("paper.id: not an arXiv id")
