"""The "Since you last saw it" section in headless Chromium: readable, escaped, in the column."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import pytest

from digest.mail.followups import followup_views
from digest.mail.preview import CHROMIUM
from digest.mail.render import Renderer
from digest.store.shown import Seen
from digest.themes.followups import choose_followups
from tests.test_email_browser import load
from tests.test_render import SUBSCRIBER, real_papers, sample_edition, selection_of

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Chromium at /usr/bin/chromium"
)

SECTION_JS = """() => {
  const heading = [...document.querySelectorAll('p.th')].find(p => p.textContent.includes('Since you'));
  const links = [...document.querySelectorAll('a.tt')].map(a => {
    const r = a.getBoundingClientRect(); return {text: a.textContent, left: r.left, right: r.right};
  });
  const r = heading.getBoundingClientRect();
  return {heading: heading.textContent, top: r.top, width: r.width, links,
          columns: [...document.querySelectorAll('body > div > div')].map(d => d.getBoundingClientRect().width)};
}"""


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    from digest.mail.preview import CHROMIUM_ARGS

    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("width", [375, 1200])
def test_the_section_leads_the_papers_escaped_and_within_the_column(
    browser, settings, width, tmp_path
) -> None:
    base = real_papers()[0]
    seen_at = datetime(2026, 11, 24, tzinfo=UTC)
    hostile = dataclasses.replace(
        base, arxiv_id="2410.99999", title="<script>alert(1)</script> Grasping, revisited",
        github_url="https://github.com/example/code", upvotes=base.upvotes * 3 + 20,
    )  # fmt: skip
    seen = Seen(hostile.arxiv_id, 1, seen_at, base.upvotes, None, None, None, 1)
    followups = choose_followups([(seen, hostile)])
    edition = sample_edition(6)
    renderer = Renderer(settings)
    message = renderer.prepare_digest(
        edition, selection_of(edition, 6), extra=followup_views(followups)
    ).for_subscriber(SUBSCRIBER)
    assert "<script>alert" not in message.html and "&lt;script&gt;" in message.html
    page = load(browser, message.html, width)
    found = page.evaluate(SECTION_JS)
    page.screenshot(path=str(tmp_path / f"followups-{width}.png"), full_page=True)
    page.close()
    assert found["heading"] == "Since you last saw it"
    last = next(link for link in found["links"] if "Grasping" in link["text"])
    assert last["text"] == "<script>alert(1)</script> Grasping, revisited"  # shown as text
    assert 0 <= last["left"] and last["right"] <= min(width, 600 + (width - 600) / 2)
    assert max(found["columns"]) <= 600, found["columns"]
    titles = [link["text"] for link in found["links"]]
    # Right under the edition's list of themes, before its papers: news first, then the day.
    assert titles.index(last["text"]) == 0 and len(titles) == 7
