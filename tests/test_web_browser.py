"""End to end in a real headless Chromium against `digest web` (uvicorn) on 127.0.0.1,
with the file transport: subscribe, confirm from the .eml (a button), change preferences, unsubscribe
with the button; then a raw RFC 8058 POST, as a mail provider sends it, for another subscriber.

Set SCREENSHOT_DIR to keep the 375 px screenshots of the subscribe and preferences pages.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest import subscribers as subs
from digest.config import Settings
from digest.mail.preview import CHROMIUM as CHROMIUM_PATH
from digest.mail.preview import CHROMIUM_ARGS as ARGS
from digest.mail.render import Renderer
from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.store import Store
from tests.webserver import digest_web

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path(CHROMIUM_PATH)
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def served(settings: Settings, db_url: str, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """`digest web` in a subprocess on a free port, writing mail to tmp_path/outbox."""
    env = {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": settings.secret_key,
        "DIGEST_OUTBOX": str(settings.outbox),
        "DIGEST_TRANSPORT": "file",
        "DIGEST_FROM": settings.sender,
    }
    with digest_web(env, tmp_path) as base:
        yield base, settings.model_copy(update={"base_url": base, "transport": "file"})
    text = (tmp_path / "web.log").read_text()
    assert "reader@example.org" not in text.lower(), "an address reached the log"


def wait_for_eml(outbox: Path, count: int) -> list[Path]:
    deadline = time.monotonic() + 10
    while True:
        found = sorted(outbox.rglob("*.eml"), key=lambda p: (p.parent.name, int(p.stem)))
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"expected {count} emails in {outbox}"
        time.sleep(0.05)


def link_from(eml: Path, kind: str) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    match = re.search(rf"(http://127\.0\.0\.1:\d+/{kind}/[A-Za-z0-9_.\-]+)", text)
    assert match, f"no {kind} link in {eml.name}"
    return match.group(1)


def screenshot(page, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_subscribe_confirm_preferences_unsubscribe_in_chromium(
    served: tuple[str, Settings], db_url: str, tmp_path: Path
) -> None:
    base, live = served
    topics = subs.known_topics(live)
    outbox = tmp_path / "outbox"
    check = Store(db_url)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 375, "height": 812}, java_script_enabled=False)

        # Subscribe with the form, as a visitor on a phone would (no JavaScript needed).
        page.goto(base + "/")
        screenshot(page, tmp_path, "subscribe-375.png")
        page.fill("#email", "Reader@Example.org")
        page.check(f"input[name=topic][value='{topics[0]}']")
        page.check("input[name=frequency][value=weekly]")
        page.click("button[type=submit]")
        assert "Check your inbox" in page.inner_text("h1")

        # Follow the confirmation link from the email the file transport wrote (the address
        # is looked up after the answer, then the email goes out) and press the button.
        [confirmation] = wait_for_eml(outbox, 1)
        assert check.find_subscriber("reader@example.org").status is SubscriberStatus.UNCONFIRMED
        page.goto(link_from(confirmation, "confirm"))
        screenshot(page, tmp_path, "confirm-375.png")
        assert check.find_subscriber("reader@example.org").status is SubscriberStatus.UNCONFIRMED
        page.click("button[type=submit]")
        assert "subscribed" in page.inner_text("h1")
        assert check.find_subscriber("reader@example.org").status is SubscriberStatus.ACTIVE

        # Change preferences.
        page.get_by_role("link", name="Your preferences").click()
        page.check(f"input[name=topic][value='{topics[1]}']")
        page.check("input[name=frequency][value=daily]")
        page.fill("#max_papers", "5")
        page.click("button[value=save]")
        assert "saved" in page.inner_text(".notice")
        screenshot(page, tmp_path, "preferences-375.png")
        reader = check.find_subscriber("reader@example.org")
        assert reader.topics == (topics[0], topics[1])
        assert reader.frequency is Frequency.DAILY and reader.max_papers == 5

        # Unsubscribe with the button, from the link in the welcome email.
        welcome = wait_for_eml(outbox, 2)[1]
        page.goto(link_from(welcome, "unsubscribe"))
        assert check.find_subscriber("reader@example.org").status is SubscriberStatus.ACTIVE
        screenshot(page, tmp_path, "unsubscribe-375.png")
        page.click("button[type=submit]")
        assert "unsubscribed" in page.inner_text("h1")
        assert check.find_subscriber("reader@example.org").status is SubscriberStatus.UNSUBSCRIBED
        browser.close()

    # A mail provider's one-click unsubscribe for another subscriber: the URL from the
    # List-Unsubscribe header, a bare POST, no cookies, no redirect followed.
    other = check.add_subscriber(Subscriber(email="other@example.org"))
    header = Renderer(live).welcome(other).headers["List-Unsubscribe"]
    url = urlsplit(header.strip("<>"))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(
        "POST",
        url.path,
        body=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("Set-Cookie") is None
    conn.close()
    assert check.get_subscriber(other.id).status is SubscriberStatus.UNSUBSCRIBED
    check.close()
