"""The archive as the papers page, through Starlette's TestClient on a real SQLite file:
the index of editions with their themes, an edition page, search, the subscribe box, the
size budget and the Content-Security-Policy for thumbnails."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from importlib import resources

import pytest
from starlette.testclient import TestClient

from digest.config import Settings
from digest.delivery.transports import MemoryTransport
from digest.mail.render import Renderer
from digest.mail.text import format_authors
from digest.models import Edition, EditionStatus, Frequency, Paper, SubscriberStatus, Theme
from digest.pipeline import build_edition
from digest.sources.jsonfile import from_hf_items
from digest.store import Store
from digest.web import create_app
from tests.conftest import FIXTURES
from tests.test_render import Doc

PAGE_BUDGET = 50_000  # bytes of HTML per page, before images
THUMBS = "https://cdn-thumbnails.huggingface.co/"


def bundled_papers() -> list[Paper]:
    """The bundled Hugging Face day (48 papers) and the recorded recent item (code, project)."""
    text = resources.files("digest.examples").joinpath("papers.json").read_text()
    items = json.loads(text) + json.loads((FIXTURES / "hf_daily_papers_recent.json").read_text())
    return from_hf_items(items, source="hf").papers


def fill_archive(store: Store, settings: Settings) -> list[Edition]:
    """Two sent daily editions built as `digest run` builds them (real themes), and a draft."""
    papers = bundled_papers()
    built = []
    for day, batch in ((date(2026, 11, 25), papers[:20]), (date(2026, 11, 26), papers[20:])):
        store.upsert_papers(batch)
        edition, _ = build_edition(store, settings, Frequency.DAILY, day)
        store.set_edition_status(edition.id, EditionStatus.SENT)
        built.append(store.get_edition(edition.id))
    store.save_edition(Edition("daily-2026-11-27", Frequency.DAILY, date(2026, 11, 27), ()))
    return built


@pytest.fixture
def client(settings: Settings, store: Store) -> TestClient:
    app = create_app(settings, store, transport=MemoryTransport(), renderer=Renderer(settings))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def archive(store: Store, settings: Settings) -> list[Edition]:
    return fill_archive(store, settings)


def test_index_lists_editions_newest_first_with_themes_and_lead_papers(
    client: TestClient, archive: list[Edition]
) -> None:
    older, newer = archive
    page = client.get("/archive")
    assert page.status_code == 200
    html = page.text
    assert html.index("Thursday 26 November 2026") < html.index("Wednesday 25 November 2026")
    assert "daily-2026-11-27" not in html  # a draft is not published
    for edition in archive:
        for n, theme in enumerate(edition.themes, 1):
            assert f'href="/archive/{edition.key}#t-{n}">{theme.label}</a>' in html.replace(
                "&amp;", "&"
            )
            lead = theme.papers[0]
            assert f'href="/archive/{edition.key}#p-{lead.arxiv_id}"' in html
    assert f"{len(newer.papers)} papers in {len(newer.themes)} themes" in html
    assert len(page.content) < PAGE_BUDGET


def test_edition_page_shows_each_paper_as_the_seed_page_does(
    client: TestClient, archive: list[Edition]
) -> None:
    edition = archive[1]
    page = client.get(f"/archive/{edition.key}")
    assert page.status_code == 200 and len(page.content) < PAGE_BUDGET
    doc = Doc(page.text)
    links = dict(doc.links)
    # Theme navigation: one anchor per theme, each pointing at its section; a way back.
    toc = [h for h, _ in doc.links if h.startswith("#t-")]
    sections = [a["id"] for a in doc.all("section")]
    assert toc == [f"#t-{n}" for n in range(1, len(edition.themes) + 1)]
    assert sections == [t[1:] for t in toc]
    assert ("/archive", "← All editions") in doc.links
    for paper in edition.papers:
        assert links[paper.url] == " ".join(paper.title.split())  # title, to the HF page
        assert f'id="p-{paper.arxiv_id}"' in page.text
        assert f"▲ {paper.upvotes}<" in page.text
    recent = next(p for p in edition.papers if p.github_url)  # the item with everything
    assert links[recent.github_url].startswith("Code ★") and links[recent.project_url] == "Project"
    assert recent.organization in doc.body_text
    assert recent.ai_summary[:60] in doc.body_text
    for paper in edition.papers[:5]:
        assert format_authors(paper.authors) in doc.body_text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\d">\d+ \w{3} \d{4}</time>', page.text)
    thumbs = [i for i in doc.all("img") if i["src"].startswith(THUMBS)]
    assert len(thumbs) == sum(1 for p in edition.papers if p.thumbnail_url)
    for img in thumbs:
        assert img["loading"] == "lazy" and img["width"] == "240" and img["height"] == "126"
        assert "alt" in img  # decorative: the title beside it says it all
    assert "/unsubscribe/" not in page.text and "/preferences/" not in page.text


def _many_papers(n: int) -> list[Paper]:
    """``n`` papers with every field long: the heaviest cards a page can hold."""
    base = next(p for p in bundled_papers() if p.github_url)
    long_abstract = " ".join(p.abstract for p in bundled_papers()[:3])
    return [
        dataclasses.replace(
            base,
            arxiv_id=f"2411.{10000 + i}",
            title=base.title + " and a rather longer subtitle about it",
            abstract=long_abstract,
            ai_summary=None,
            authors=tuple(f"Author Number{i}" for i in range(12)),
            thumbnail_url=f"{THUMBS}social-thumbnails/papers/2411.{10000 + i}.png",
        )
        for i in range(n)
    ]


def test_pages_stay_under_the_budget_however_big_the_edition(
    client: TestClient, store: Store
) -> None:
    papers = _many_papers(200)
    store.upsert_papers(papers)
    themes = tuple(Theme(f"Theme number {t}", tuple(papers[t::6])) for t in range(6))
    edition = store.save_edition(
        Edition("weekly-2026-W48", Frequency.WEEKLY, date(2026, 11, 23), themes)
    )
    store.set_edition_status(edition.id, EditionStatus.SENT)
    shown = []
    for number in range(1, 6):
        page = client.get(f"/archive/weekly-2026-W48?page={number}")
        assert page.status_code == 200 and len(page.content) < PAGE_BUDGET, len(page.content)
        found = re.findall(r'<article class="paper has-thumb" id="p-([\d.]+)"', page.text)
        assert len(found) == 40
        shown += found
        # Every page's theme navigation reaches every theme, on whichever page it starts.
        assert len(re.findall(r'href="[^"]*#t-\d+"', page.text)) == 6
    assert shown == [p.arxiv_id for t in themes for p in t.papers]  # all, once, in order
    assert client.get("/archive/weekly-2026-W48?page=6").status_code == 404
    second = client.get("/archive/weekly-2026-W48?page=2").text
    assert "(34, continued)" in second  # theme 2 (34 papers) goes on from page 1
    assert 'href="/archive/weekly-2026-W48?page=3">Next page' in second
    assert 'href="/archive/weekly-2026-W48#t-1"' in second  # theme 1 starts on page 1
    search = client.get("/archive/search", params={"q": "number"})
    assert search.text.count('class="paper') == 40 and len(search.content) < PAGE_BUDGET
    assert "200 papers match" in search.text


def test_index_pages_through_many_editions(client: TestClient, store: Store) -> None:
    paper = bundled_papers()[0]
    store.upsert_papers([paper])
    for day in range(1, 26):
        edition = store.save_edition(
            Edition(f"daily-2026-10-{day:02d}", Frequency.DAILY, date(2026, 10, day),
                    (Theme("Only", (paper,)),))
        )  # fmt: skip
        store.set_edition_status(edition.id, EditionStatus.SENT)
    first, second = client.get("/archive"), client.get("/archive?page=2")
    assert first.text.count('<section class="edition">') == 20
    assert second.text.count('<section class="edition">') == 5
    assert 'href="/archive?page=2">Older editions' in first.text
    assert "Saturday 3 October 2026" in second.text and 'href="/archive">← Newer' in second.text
    assert client.get("/archive?page=3").status_code == 404
    assert client.get("/archive?page=-1").status_code == 200  # nonsense means the first page
    assert client.get("/archive?page=99999999999999").status_code == 200


def test_search_finds_papers_and_says_where_they_were(
    client: TestClient, archive: list[Edition]
) -> None:
    page = client.get("/archive/search", params={"q": "contrastive loss"})
    assert page.status_code == 200 and len(page.content) < PAGE_BUDGET
    assert "Breaking the Memory Barrier" in page.text
    assert re.search(r"\d+ papers? match “contrastive loss”", page.text)
    assert 'href="/archive/daily-2026-11-25#p-2410.17243"' in page.text
    empty = client.get("/archive/search", params={"q": "zzzqqq"})
    assert "No paper matches “zzzqqq”" in empty.text
    blank = client.get("/archive/search")
    assert blank.status_code == 200 and "match" not in blank.text


@pytest.mark.parametrize(
    "query", ['"', "NEAR(", "a AND", "*", "<script>alert(1)</script>", "'; DROP TABLE papers"]
)
def test_search_input_is_never_an_error_and_is_escaped(
    client: TestClient, archive: list[Edition], query: str
) -> None:
    page = client.get("/archive/search", params={"q": query})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert client.get("/archive").status_code == 200  # still there


def test_every_archive_page_has_a_working_subscribe_box(
    client: TestClient, archive: list[Edition], store: Store
) -> None:
    for path in ("/archive", f"/archive/{archive[0].key}", "/archive/search?q=vision"):
        html = client.get(path).text
        box = re.search(r'<form method="post" action="/subscribe".*?</form>', html, re.S)
        assert box and 'name="email"' in box.group(0), path
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    answer = client.post("/subscribe", data={"csrf": csrf, "email": "box@example.org",
                                             "frequency": "daily"})  # fmt: skip
    assert "Check your inbox" in answer.text
    assert store.find_subscriber("box@example.org").status is SubscriberStatus.UNCONFIRMED
    forged = client.post("/subscribe", data={"csrf": "x", "email": "f@example.org"})
    assert forged.status_code == 403


def test_images_come_only_from_the_thumbnail_host(
    client: TestClient, archive: list[Edition], store: Store
) -> None:
    planted = dataclasses.replace(
        archive[0].papers[0], thumbnail_url="https://tracker.example.org/pixel.png"
    )
    store.upsert_papers([planted])
    for path in ("/archive", f"/archive/{archive[0].key}", "/archive/search?q=memory"):
        page = client.get(path)
        csp = page.headers["content-security-policy"]
        assert "img-src https://cdn-thumbnails.huggingface.co;" in csp
        assert "unsafe-inline" not in csp and "https:;" not in csp and "data:" not in csp
        srcs = [i["src"] for i in Doc(page.text).all("img")]
        assert all(s.startswith(THUMBS) for s in srcs), path
    assert "tracker.example.org" not in client.get(f"/archive/{archive[0].key}").text
