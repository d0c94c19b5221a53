"""The file source and the shared HF normaliser: recorded fixtures field by field, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.sources import make_source
from digest.sources.jsonfile import load_papers
from digest.sources.normalize import MAX_ABSTRACT_CHARS, MAX_TITLE_CHARS

FIXTURES = Path(__file__).parent / "fixtures"
HF_2024 = FIXTURES / "hf_daily_papers_2024-10-25.json"
HF_2026 = FIXTURES / "hf_daily_papers_recent.json"
EXAMPLES = Path(__file__).parent.parent / "examples" / "papers.json"


def _item(arxiv_id: str = "2410.17243", **top: object) -> dict:
    """A minimal HF daily-papers item; ``top`` and ``paper=`` override parts."""
    paper = {"id": arxiv_id, "title": "A\n  wrapped title", "summary": "Line one\nline two."}
    paper.update(top.pop("paper", {}))
    return {"paper": paper, "title": f"Paper {arxiv_id}", **top}


def _write(tmp_path: Path, items: object, name: str = "papers.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


# --- the recorded fixtures, field by field ---


def test_hf_2024_fixture_all_29_papers_with_listing_and_arxiv_dates_apart() -> None:
    result = load_papers(HF_2024)
    assert len(result.papers) == 29 and result.skipped == []
    first = result.papers[0]
    assert first.arxiv_id == "2410.17243"
    # The clean top-level title, not the hard-wrapped paper.title.
    assert first.title == (
        "Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss"
    )
    assert first.abstract.startswith("Contrastive loss is a powerful approach for representation")
    assert "\n" not in first.abstract and "  " not in first.abstract
    assert "negative samples to better distinguish" in first.abstract  # unwrapped, one space
    assert (
        first.authors[:3] == ("Zesen Cheng", "Hang Zhang", "Kehan Li") and len(first.authors) == 9
    )
    assert first.published_at == datetime(2024, 10, 22, 17, 59, 30, tzinfo=UTC)  # arXiv date
    assert first.listed_at == datetime(2024, 10, 25, 0, 57, 9, 392000, tzinfo=UTC)  # HF listing
    assert (first.upvotes, first.comments) == (64, 3)
    assert first.thumbnail_url == (
        "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2410.17243.png"
    )
    # 2024 responses had none of the newer fields: they stay empty, the paper is still kept.
    assert (first.ai_summary, first.keywords, first.github_url, first.project_url) == (
        None,
        (),
        None,
        None,
    )
    assert first.organization is None and first.github_stars is None
    assert first.sources == ("file",)
    assert all(p.title and p.abstract and p.authors for p in result.papers)
    assert len({p.arxiv_id for p in result.papers}) == 29


def test_hf_2026_fixture_reads_every_newer_field() -> None:
    (paper,) = load_papers(HF_2026).papers
    assert paper.arxiv_id == "2602.23229"
    assert paper.title == "Large Multimodal Models as General In-Context Classifiers"
    assert paper.authors == (
        "Marco Garosi",
        "Matteo Farina",
        "Alessandro Conti",
        "Massimiliano Mancini",
        "Elisa Ricci",
    )
    # submittedOnDailyAt is the listing; the top-level publishedAt here is the arXiv date.
    assert paper.listed_at == datetime(2026, 3, 6, 3, 55, 12, 777000, tzinfo=UTC)
    assert paper.published_at == datetime(2026, 2, 26, 17, 8, 18, tzinfo=UTC)
    assert (paper.upvotes, paper.comments) == (10, 1)
    assert paper.ai_summary.startswith("Large Multimodal Models demonstrate superior performance")
    assert paper.keywords[:2] == ("Vision-Language Models", "Large Multimodal Models")
    assert len(paper.keywords) == 9
    assert paper.github_url == "https://github.com/marco-garosi/CIRCLE"
    assert paper.github_stars == 9
    assert paper.project_url == "https://circle-lmm.github.io/"
    assert paper.organization == "Multimedia and Human Understanding Group"
    assert paper.thumbnail_url.endswith("/papers/2602.23229.png")


def test_github_repo_as_owner_slash_repo_becomes_a_url(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            _item("2401.00001", paper={"githubRepo": "marco-garosi/CIRCLE"}),
            _item("2401.00002", paper={"githubRepo": "https://github.com/a/b.git"}),
            _item("2401.00003", organization="MHUGLab"),
            _item("2401.00004", organization={"name": "MHUGLab"}),
        ],
    )
    papers = load_papers(path).papers
    assert [p.github_url for p in papers[:2]] == [
        "https://github.com/marco-garosi/CIRCLE",
        "https://github.com/a/b",
    ]
    assert [p.organization for p in papers[2:]] == ["MHUGLab", "MHUGLab"]


def test_json_lines_with_extra_fields_and_categories() -> None:
    path = Path("rows.jsonl")
    rows = [
        {
            "id": "2601.09709v2",
            "title": "Social Determinants of Health Prediction",
            "abstract": "Social Determinants\nof Health.",
            "label": "cs.LG",
            "categories": ["cs.LG", "cs.CL"],
            "date": "2026-01-16",
        },
        {"id": "2601.09713", "title": "Second", "abstract": "B."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    first, second = load_papers(path).papers
    assert first.arxiv_id == "2601.09709"  # version-less
    assert first.abstract == "Social Determinants of Health."
    assert first.categories == ("cs.LG", "cs.CL")
    assert first.listed_at == datetime(2026, 1, 16, tzinfo=UTC)
    assert second.categories == () and second.upvotes == 0


def test_make_source_file_reads_the_path_and_needs_one(settings) -> None:
    source = make_source("file", settings, path=HF_2026)
    assert source.name == "file" and len(source.fetch(None).papers) == 1
    with pytest.raises(DigestError, match="DIGEST_PAPERS_FILE"):
        make_source("file", settings)
    with pytest.raises(DigestError, match="unknown source 'rss'"):
        make_source("rss", settings)


# --- wholly broken files: one DigestError, one line, naming the file ---


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HF_2024.read_bytes()[:5000], "not valid JSON"),  # truncated download
        (b'{"papers": []}', "neither a JSON list nor JSON Lines"),  # pretty object, not a list
        (b'{\n  "id": "2401.00001"\n}', "neither a JSON list nor JSON Lines"),
        (b'[{"paper": {"id": "2401.00001", "title": "Caf\xe9"}}]', "not UTF-8 text"),
        (b"", "the file is empty"),
        (b"hello world", "neither a JSON list nor JSON Lines"),
    ],
)
def test_wholly_broken_file_is_one_clear_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(DigestError) as info:
        load_papers(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DigestError, match="no such papers file"):
        load_papers(tmp_path / "nope.json")


# --- bad records: each skipped with a reason, the rest kept ---


def test_bad_records_are_skipped_with_reasons_and_the_rest_kept(tmp_path: Path) -> None:
    good = _item("2410.00001")
    items = [
        good,
        "not an object",
        {"title": "no paper"},
        _item("not-an-id"),
        _item("2410.00003", paper={"upvotes": "lots"}),
        _item("2410.00004", paper={"authors": "Jane Doe"}),
        _item("2410.00005", title=None, paper={"title": None}),
        _item("2410.00006", title=42),
        _item("2410.00007", paper={"publishedAt": "yesterday"}),
        _item("2410.00008", paper={"projectPage": "javascript:alert(1)"}),
        _item("2410.00009", paper={"summary": ["a", "list"]}),
        _item("2410.00001v2"),  # a duplicate: the same paper in another version
    ]
    result = load_papers(_write(tmp_path, items))
    assert [p.arxiv_id for p in result.papers] == ["2410.00001"]
    reasons = {s.ref: s.reason for s in result.skipped}
    assert reasons == {
        "#1": "expected an object, got str",
        "#2": "paper: missing or not an object",
        "#3 (not-an-id)": "paper.id: not an arXiv id: 'not-an-id'",
        "#4 (2410.00003)": "upvotes: expected a whole number >= 0, got 'lots'",
        "#5 (2410.00004)": "authors: expected a list",
        "#6 (2410.00005)": "title: missing",
        "#7 (2410.00006)": "title: expected text, got int",
        "#8 (2410.00007)": "publishedAt: not an ISO 8601 date: 'yesterday'",
        "#9 (2410.00008)": "projectPage: not an http(s) URL: 'javascript:alert(1)'",
        "#10 (2410.00009)": "summary: expected text, got list",
        "#11 (2410.00001)": "duplicate of #0 (2410.00001)",
    }


def test_json_lines_bad_lines_are_skipped_after_a_good_first_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"id": "2401.00001", "title": "Fine", "abstract": "A."}\n'
        '{"id": "2401.00002", "title": "Trunc\n'
        '{"id": "2401.00003", "title": "No abstract"}\n'
        '{"id": "2401.00001", "title": "Again", "abstract": "A."}\n',
        encoding="utf-8",
    )
    result = load_papers(path)
    assert [p.title for p in result.papers] == ["Fine"]
    assert [(s.ref, s.reason.split(":")[0]) for s in result.skipped] == [
        ("line 2", "not valid JSON"),
        ("line 3 (2401.00003)", "abstract"),
        ("line 4 (2401.00001)", "duplicate of line 1 (2401.00001)"),
    ]


def test_nul_and_control_characters_are_stripped(tmp_path: Path) -> None:
    item = _item(
        "2410.00001",
        title="Null\x00 bytes\x07 and\x1b[31m escapes",
        paper={"summary": "Abs\x00tract\x0b here.", "authors": [{"name": "A\x00nn"}]},
    )
    (paper,) = load_papers(_write(tmp_path, [item])).papers
    assert paper.title == "Null bytes and[31m escapes"
    assert paper.abstract == "Abstract here."
    assert paper.authors == ("Ann",)


def test_a_one_megabyte_abstract_is_capped(tmp_path: Path) -> None:
    huge = ("word " * 210_000).strip()  # ~1 MB
    items = [_item("2410.00001", paper={"summary": huge}), _item("2410.00002", title="t" * 10_000)]
    first, second = load_papers(_write(tmp_path, items)).papers
    assert len(first.abstract) <= MAX_ABSTRACT_CHARS and first.abstract.endswith("word…")
    assert len(second.title) == MAX_TITLE_CHARS and second.title.endswith("…")


def test_html_rtl_and_emoji_titles_are_kept_as_text(tmp_path: Path) -> None:
    titles = [
        "<script>alert(1)</script> & <b>Bold</b> claims",
        "نموذج لغوي كبير للغة العربية",
        "🤗 Transformers 🚀: fast ✨ and 👩‍🔬 friendly",
    ]
    items = [_item(f"2410.0000{i}", title=t) for i, t in enumerate(titles, start=1)]
    papers = load_papers(_write(tmp_path, items)).papers
    assert [p.title for p in papers] == titles  # escaping is the renderer's job


def test_paragraphs_in_an_abstract_survive_unwrapping(tmp_path: Path) -> None:
    item = _item("2410.00001", paper={"summary": "  First\nparagraph.\n\n  Second\r\nparagraph. "})
    (paper,) = load_papers(_write(tmp_path, [item])).papers
    assert paper.abstract == "First paragraph.\n\nSecond paragraph."


def test_json_lines_text_is_cleaned_alike_whether_or_not_it_needed_it(tmp_path: Path) -> None:
    # Single-spaced ASCII lines take a shortcut; anything else is folded and stripped.
    texts = {
        "Plain and clean": "Plain and clean",
        "  Leading and trailing  ": "Leading and trailing",
        "Two  spaces\tand a tab": "Two spaces and a tab",
        "A bell\x07 and a delete\x7f": "A bell and a delete",
        "Wrapped at\nthe column": "Wrapped at the column",
        "Café, naïve (NFC)": "Café, naïve (NFC)",
        "": "",
    }
    path = tmp_path / "rows.jsonl"
    rows = [{"id": f"2601.{i:05d}", "title": f"T {t}", "abstract": t} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    papers = load_papers(path).papers
    assert [p.abstract for p in papers] == list(texts.values())
    assert [p.title for p in papers] == [f"T {t}".strip() for t in texts.values()]


def test_examples_file_has_40_plus_real_diverse_papers() -> None:
    result = load_papers(EXAMPLES)
    assert result.skipped == [] and len(result.papers) >= 40
    ids = {p.arxiv_id for p in result.papers}
    hf_2024 = {p.arxiv_id for p in load_papers(HF_2024).papers}
    assert hf_2024 <= ids and "2602.23229" in ids
    assert all(p.title and p.abstract for p in result.papers)
    categories = {p.categories[0] for p in result.papers if p.categories}
    assert len(categories) >= 5  # diverse themes for the demo
