"""How the emails look in a real browser engine (headless Chromium) at phone and desktop widths."""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from datetime import date
from pathlib import Path

import pytest

from digest.mail.preview import CHROMIUM
from digest.mail.preview import CHROMIUM_ARGS as ARGS
from digest.mail.render import Renderer
from digest.models import Edition, Frequency, Theme
from tests.test_render import SUBSCRIBER, real_papers, sample_edition, selection_of

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Chromium at /usr/bin/chromium"
)

# Where every title link sits and whether it can be seen.
TITLES_JS = """() => [...document.querySelectorAll('a.tt')].map(a => {
  const r = a.getBoundingClientRect(); const s = getComputedStyle(a);
  return {text: a.textContent, left: r.left, right: r.right, width: r.width, height: r.height,
          visible: s.visibility === 'visible' && s.display !== 'none' && parseFloat(s.opacity) > 0,
          color: s.color};
})"""


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def png(width: int, height: int) -> bytes:
    """A plain grey PNG of this size, standing in for a thumbnail (nothing leaves the machine)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xc8" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + (chunk(b"IEND", b""))
    )


def load(browser, html: str, width: int, scheme: str = "light", thumbnail: bytes | None = None):
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.emulate_media(color_scheme=scheme)

    def answer(route) -> None:
        if thumbnail and route.request.url.startswith("https://cdn-thumbnails.huggingface.co/"):
            route.fulfill(status=200, body=thumbnail, content_type="image/png")
        else:
            route.abort()  # offline, like a mail client blocking images

    page.route("**/*", answer)
    page.set_content(html)
    return page


def hostile_edition() -> Edition:
    base = real_papers()[0]
    papers = (
        dataclasses.replace(
            base,
            arxiv_id="2411.00001",
            title="<script>alert(1)</script> " + "Supercalifragilistic" * 6,
        ),
        dataclasses.replace(base, arxiv_id="2411.00002", abstract="x" * 1_000_000),
        dataclasses.replace(
            base,
            arxiv_id="2411.00003",
            title="تعلم الآلة العميق",
            abstract="نموذج لغوي كبير. " * 40,
        ),
        dataclasses.replace(base, arxiv_id="2411.00004", authors=("A" * 120, "B", "C", "D")),
    )
    return Edition(
        "daily-2026-11-26", Frequency.DAILY, date(2026, 11, 26), (Theme("Hostile", papers),)
    )


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_digest_fits_and_every_title_is_visible(
    browser, settings, width, scheme, tmp_path: Path
) -> None:
    renderer = Renderer(settings)
    for edition, limit in ((sample_edition(50), 50), (hostile_edition(), 30)):
        message = renderer.prepare_digest(edition, selection_of(edition, limit)).for_subscriber(
            SUBSCRIBER
        )
        page = load(browser, message.html, width, scheme)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"horizontal scrolling at {width}px"
        titles = page.evaluate(TITLES_JS)
        assert len(titles) == len(edition.papers[:limit])
        for t in titles:
            assert t["visible"] and t["width"] > 0 and t["height"] > 0, t
            assert t["left"] >= 0 and t["right"] <= inner + 0.5, t
        if scheme == "dark":  # titles turn light on the dark card
            assert all(t["color"] == "rgb(230, 232, 235)" for t in titles)
        page.screenshot(path=str(tmp_path / f"digest-{width}-{scheme}.png"), full_page=True)
        page.close()


@pytest.mark.parametrize("width", [375, 600])
def test_confirmation_and_welcome_fit(browser, settings, width) -> None:
    renderer = Renderer(settings)
    for message in (renderer.confirmation(SUBSCRIBER, 3), renderer.welcome(SUBSCRIBER)):
        page = load(browser, message.html, width)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
        button = page.get_by_role(
            "link",
            name=message.subject
            and (
                "Confirm my subscription" if "Confirm" in message.subject else "Choose your topics"
            ),
        )
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= inner
        page.close()


@pytest.mark.parametrize("width", [375, 600])
def test_thumbnails_that_load_keep_to_the_column(browser, settings, width, tmp_path) -> None:
    """The 50-paper email with each theme's thumbnail loaded (a 1200x630 stand-in image)."""
    edition = sample_edition(50)
    message = Renderer(settings).prepare_digest(edition, selection_of(edition, 50))
    html = message.for_subscriber(SUBSCRIBER).html
    assert len(html.encode()) <= 99_000  # with two feedback links per paper: under the 102 KB clip
    page = load(browser, html, width, thumbnail=png(1200, 630))
    page.wait_for_load_state("load")
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert scroll <= inner, f"horizontal scrolling at {width}px"
    boxes = page.evaluate(
        "[...document.images].filter(i => i.src.includes('cdn-thumbnails')).map(i => "
        "({w: i.getBoundingClientRect().width, h: i.getBoundingClientRect().height,"
        "  left: i.getBoundingClientRect().left, done: i.complete && i.naturalWidth > 0}))"
    )
    assert len(boxes) == len(edition.themes)
    for box in boxes:
        assert box["done"] and box["left"] >= 0 and box["left"] + box["w"] <= inner
        assert box["w"] <= 552 and abs(box["h"] / box["w"] - 630 / 1200) < 0.02  # not stretched
    page.screenshot(path=str(tmp_path / f"digest-thumbnails-{width}.png"), full_page=True)
    page.close()


def test_on_a_wide_screen_every_section_stays_in_the_600px_column(browser, settings) -> None:
    renderer = Renderer(settings)
    edition = sample_edition(10)
    digest = renderer.prepare_digest(edition, selection_of(edition, 10)).for_subscriber(SUBSCRIBER)
    pages = (digest.html, renderer.confirmation(SUBSCRIBER, 1).html)
    for html in pages:
        page = load(browser, html, 1200)
        widths = page.evaluate(
            "[...document.querySelectorAll('body > div > div')].map(d => d.getBoundingClientRect().width)"
        )
        assert widths and max(widths) <= 600, widths  # the header once spread over the window
        page.close()
