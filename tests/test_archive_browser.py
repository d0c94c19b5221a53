"""The archive in a real headless Chromium against `digest web` on 127.0.0.1, at 375 and 1200 px.

Screenshots of the index, an edition page and a search go to SCREENSHOT_DIR (default: the
test's tmp folder) as archive-index-375.png and so on. Thumbnails are answered by the test
(a grey 1200x630 PNG) so nothing leaves the machine, while the page's own CSP still decides
whether the browser may ask for them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.config import Settings
from digest.models import Edition, EditionStatus, Frequency, SubscriberStatus, Theme
from digest.store import Store
from tests.test_archive_web import _many_papers, fill_archive
from tests.test_email_browser import png
from tests.test_web_browser import ARGS, CHROMIUM, screenshot, served  # noqa: F401 - fixture

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")

THUMBS = "https://cdn-thumbnails.huggingface.co/"
LAYOUT_JS = """() => ({
  scroll: document.documentElement.scrollWidth, inner: innerWidth,
  offside: [...document.querySelectorAll('main *')].filter(e => !e.closest('.trap')).filter(e => {
    const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < -1 || r.right > innerWidth + 1);
  }).map(e => e.tagName + '.' + e.className).slice(0, 5),
})"""
IMAGES_JS = """() => [...document.images].map(i => ({
  src: i.src, lazy: i.loading, loaded: i.complete && i.naturalWidth > 0,
  w: i.getBoundingClientRect().width, h: i.getBoundingClientRect().height}))"""


@pytest.fixture
def site(served, store: Store, settings: Settings) -> tuple[str, list[Edition]]:  # noqa: F811
    base, _live = served
    return base, fill_archive(store, settings)


def _open(browser, width: int, thumbnails: list[str], *, scripts: bool = False):
    # The pages need no JavaScript; Chromium loads lazy images lazily only with it on.
    page = browser.new_page(viewport={"width": width, "height": 900}, java_script_enabled=scripts)
    grey = png(1200, 630)

    def answer(route) -> None:
        if route.request.url.startswith(THUMBS):
            thumbnails.append(route.request.url)
            route.fulfill(status=200, body=grey, content_type="image/png")
        else:
            route.continue_()  # digest web itself, on 127.0.0.1

    page.route("**/*", answer)
    return page


def _fits(page, where: str) -> None:
    layout = page.evaluate(LAYOUT_JS)
    assert layout["scroll"] <= layout["inner"], f"horizontal scroll on {where}: {layout}"
    assert not layout["offside"], f"{where}: {layout['offside']}"


@pytest.mark.parametrize("width", [375, 1200])
def test_index_edition_and_search_read_well(site, width: int, tmp_path: Path) -> None:
    base, (older, newer) = site
    asked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = _open(browser, width, asked)

        page.goto(base + "/archive")
        _fits(page, "the index")
        assert page.locator("section.edition").count() == 2
        assert page.locator("section.edition h2").first.inner_text().startswith("Thursday 26")
        screenshot(page, tmp_path, f"archive-index-{width}.png")

        # An edition: its theme navigation jumps to the section; the way back works.
        page.click(f"section.edition h2 a[href='/archive/{newer.key}']")
        page.wait_for_load_state("load")
        _fits(page, "an edition")
        third = newer.themes[2].label
        page.get_by_role("navigation", name="Themes").get_by_role("link", name=third).click()
        assert page.url.endswith("#t-3")
        box = page.locator("#t-3 h2").bounding_box()
        assert box and 0 <= box["y"] < 200  # the theme's heading is at the top of the screen
        images = page.evaluate(IMAGES_JS)
        papers_with_thumbnails = sum(1 for p in newer.papers if p.thumbnail_url)
        assert len(images) == papers_with_thumbnails
        assert all(i["lazy"] == "lazy" and i["src"].startswith(THUMBS) for i in images)
        on_screen = [i for i in images if i["loaded"]]
        assert on_screen, "the CSP or the markup kept every thumbnail out"
        assert all(abs(i["h"] / i["w"] - 126 / 240) < 0.02 for i in on_screen)  # not stretched
        page.goto(f"{base}/archive/{newer.key}")
        page.wait_for_load_state("load")
        screenshot(page, tmp_path, f"archive-edition-{width}.png")
        page.get_by_role("link", name="← All editions").click()
        assert page.url == base + "/archive"

        # Search from the index's form.
        page.fill("#q", "vision language")
        page.click("form.search button")
        assert "/archive/search?q=vision+language" in page.url
        _fits(page, "a search")
        assert "match “vision language”" in page.inner_text("main")
        assert page.locator("article.paper").count() >= 3
        screenshot(page, tmp_path, f"archive-search-{width}.png")
        browser.close()


def test_the_subscribe_box_subscribes_from_an_edition_page(site, store: Store) -> None:
    base, (older, _newer) = site
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = _open(browser, 375, [])
        page.goto(f"{base}/archive/{older.key}")
        page.fill("#box-email", "Reader@Example.org")
        page.click("form.box button[type=submit]")
        assert "Check your inbox" in page.inner_text("h1")
        browser.close()
    subscriber = store.find_subscriber("reader@example.org")
    assert subscriber.status is SubscriberStatus.UNCONFIRMED


def test_thumbnails_load_as_the_reader_scrolls(served, store: Store) -> None:  # noqa: F811
    base, _live = served
    papers = _many_papers(40)
    store.upsert_papers(papers)
    edition = store.save_edition(Edition("daily-2026-11-28", Frequency.DAILY,
                                         date(2026, 11, 28), (Theme("All", tuple(papers)),)))  # fmt: skip
    store.set_edition_status(edition.id, EditionStatus.SENT)
    asked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = _open(browser, 1200, asked, scripts=True)
        page.goto(f"{base}/archive/{edition.key}")
        page.wait_for_load_state("networkidle")
        first_screen = len(set(asked))
        assert 0 < first_screen < 40  # what is near the screen, not the whole page
        page.locator("article.paper").last.scroll_into_view_if_needed()
        for _ in range(100):  # wait_for_function evaluates a string, which the CSP forbids
            if papers[-1].thumbnail_url in asked:
                break
            page.wait_for_timeout(50)
        assert len(set(asked)) > first_screen and papers[-1].thumbnail_url in asked
        browser.close()
