"""The feedback page and the preferences page in a real headless Chromium (no JavaScript)
against `digest web` on 127.0.0.1, at 375 px (a phone) and 1200 px: press "More like this",
change every profile field, upload a Zotero BibTeX file, remove a liked paper and undo.

Set SCREENSHOT_DIR to keep the screenshots (feedback-375.png, preferences-1200.png, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.models import Subscriber
from digest.store import Store
from digest.tokens import Purpose, Signer
from tests.conftest import TEST_SECRET
from tests.httpserver import ReplayServer
from tests.test_preferences_web import OTHER
from tests.test_seeding import LIBRARY, STORED, arxiv  # noqa: F401 - a fixture
from tests.test_web_browser import ARGS, CHROMIUM
from tests.webclient import served

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
WIDTHS = (375, 1200)


def screenshot(page, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_feedback_and_preferences_pages_in_chromium(
    store: Store,
    db_url: str,
    tmp_path: Path,
    arxiv: ReplayServer,  # noqa: F811 - the fixture
) -> None:
    store.upsert_papers([STORED, OTHER])
    ada = store.add_subscriber(Subscriber("ada@example.org", likes=(OTHER.arxiv_id,)))
    signer = Signer(TEST_SECRET)
    more = f"/feedback/{signer.make_feedback(ada.id, STORED.arxiv_id)}?choice=more"
    preferences = f"/preferences/{signer.make(Purpose.PREFERENCES, ada.id)}"
    with served(db_url, tmp_path, arxiv.url) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        for width in WIDTHS:
            page = browser.new_page(
                viewport={"width": width, "height": 800}, java_script_enabled=False
            )
            page.goto(base + more)
            assert STORED.title in page.inner_text("h2")
            screenshot(page, tmp_path, f"feedback-{width}.png")
            assert store.rating(ada.id, STORED.arxiv_id) is None
            page.click("button[value=more]")
            assert "Saved" in page.inner_text(".notice")
            assert store.rating(ada.id, STORED.arxiv_id) == 1
            if width == 375:
                screenshot(page, tmp_path, "feedback-done-375.png")
                page.click("button[value=undo]")
                assert store.rating(ada.id, STORED.arxiv_id) is None
            page.goto(base + preferences)
            assert OTHER.title in page.inner_text("#likes")
            screenshot(page, tmp_path, f"preferences-{width}.png")
            page.close()

        page = browser.new_page(viewport={"width": 1200, "height": 800}, java_script_enabled=False)
        page.goto(base + preferences)
        page.check("input[name=blend][value='0.25']")
        page.fill("#follow_authors", "Kaiming He\nYann LeCun")
        page.fill("#follow_orgs", "Meta AI")
        page.select_option("#timezone", "Europe/Berlin")
        page.select_option("#send_hour", "6")
        page.check("input[name=empty_days][value=roll]")
        page.uncheck("input[name=followups]")
        page.click("button[value=save]")
        assert "saved" in page.inner_text(".notice")
        now = store.get_subscriber(ada.id)
        assert (now.blend, now.timezone, now.send_hour, now.empty_days) == (
            0.25,
            "Europe/Berlin",
            6,
            "roll",
        )
        assert now.follow_authors == ("Kaiming He", "Yann LeCun") and now.followups is False

        page.set_input_files("#library", str(LIBRARY / "zotero.bib"))
        page.click("button[value=seed]")
        assert page.inner_text(".notice").startswith("Liked 2 papers; 1 already in your profile")
        screenshot(page, tmp_path, "preferences-seeded-1200.png")
        page.click(f"button[name=remove][value='{OTHER.arxiv_id}']")
        assert f"Removed {OTHER.arxiv_id}" in page.inner_text(".notice")
        page.click("form.undo button")
        assert OTHER.arxiv_id in store.get_subscriber(ada.id).likes
        browser.close()
