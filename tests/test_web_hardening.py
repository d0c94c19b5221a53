"""`digest web` under attack, through a real uvicorn on 127.0.0.1 (issue 12, items 4-6, confirm).

Forwarded headers count only from trusted proxies; subscribe answers new and deleted
addresses in the same time; every text a subscriber controls is capped with a clear 400;
a confirmation link changes nothing until the person presses the button.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from digest import subscribers as subs
from digest.config import ConfigError, Settings, load_settings
from digest.models import Subscriber, SubscriberStatus
from digest.store import Store
from digest.web.guard import SUBSCRIBE_ANSWER_AFTER
from digest.web.server import make_server

SECRET_FIELDS = re.compile(r'name="csrf" value="([^"]+)"')


@contextmanager
def live_web(settings: Settings, store: Store) -> Iterator[int]:
    """The app in the one uvicorn set-up of `digest web`, on a free port; yields the port.

    The app's shared context is at ``live_web.context`` (to wait for background work).
    """
    server = make_server(settings, store, host="127.0.0.1", port=0, handle_signals=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    live_web.context = server.config.app.state.digest
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Browser:
    """One keep-alive HTTP connection with a cookie jar of one cookie (the CSRF cookie)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.cookie = ""

    def request(
        self, method: str, path: str, form: dict | None = None, headers: dict | None = None
    ) -> tuple[int, str]:
        head = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            head["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers={**head, **(headers or {})})
        response = self.conn.getresponse()
        text = response.read().decode()
        cookie = response.getheader("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, text

    def csrf(self, path: str = "/") -> str:
        status, page = self.request("GET", path)
        assert status == 200, page
        return SECRET_FIELDS.search(page).group(1)

    def close(self) -> None:
        self.conn.close()


# --- item 5: proxy headers -----------------------------------------------------------------


def rotate_forwarded_for(port: int, times: int) -> list[int]:
    browser = Browser(port)
    token = browser.csrf()
    answers = []
    for i in range(times):
        status, _ = browser.request(
            "POST", "/subscribe", {"csrf": token, "email": f"r{i}@example.org"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
        )  # fmt: skip
        answers.append(status)
    browser.close()
    return answers


def test_rotating_forwarded_for_does_not_bypass_the_rate_limit(
    settings: Settings, store: Store
) -> None:
    limited = settings.model_copy(update={"subscribe_rate": 3})
    with live_web(limited, store) as port:
        assert rotate_forwarded_for(port, 6) == [200, 200, 200, 429, 429, 429]


def test_a_trusted_proxy_counts_each_forwarded_client(settings: Settings, store: Store) -> None:
    proxied = settings.model_copy(update={"subscribe_rate": 3, "trusted_proxies": ["127.0.0.0/8"]})
    with live_web(proxied, store) as port:
        assert rotate_forwarded_for(port, 6) == [200] * 6  # six clients behind the proxy
        browser = Browser(port)
        token = browser.csrf()
        same = [
            browser.request(
                "POST",
                "/subscribe",
                {"csrf": token, "email": "x@example.org"},
                headers={"X-Forwarded-For": "198.51.100.7"},
            )[0]  # fmt: skip
            for _ in range(4)
        ]
        browser.close()
    assert same == [200, 200, 200, 429]


def test_a_trusted_proxy_that_is_not_an_address_stops_start_up() -> None:
    with pytest.raises(ConfigError, match=r"^DIGEST_TRUSTED_PROXIES: .*'10.0.0.0/33'"):
        load_settings(trusted_proxies="127.0.0.1, 10.0.0.0/33")
    assert load_settings(trusted_proxies="127.0.0.1,10.0.0.0/8").trusted_proxies == [
        "127.0.0.1", "10.0.0.0/8"
    ]  # fmt: skip


# --- item 4: constant-time subscribe -------------------------------------------------------

SAMPLES = 80


def settle(ctx: object) -> None:
    """Wait until the work queued behind earlier answers is done, as a patient attacker would."""
    deadline = time.monotonic() + 10
    while ctx.backlog.pending:
        assert time.monotonic() < deadline, "background work did not finish"
        time.sleep(0.002)
    time.sleep(0.005)


def test_subscribe_answers_new_and_deleted_addresses_in_the_same_time(
    settings: Settings, store: Store
) -> None:
    roomy = settings.model_copy(update={"subscribe_rate": 10 * SAMPLES})
    subs.delete(store, settings.secret_key, "gone@example.org")
    times: dict[str, list[float]] = {"new": [], "deleted": []}
    with live_web(roomy, store) as port:
        browser = Browser(port)
        token = browser.csrf()
        for i in range(SAMPLES + 5):
            # Interleaved, the order flipped every other pair, so drift in the machine's load
            # weighs on both kinds alike; the first pairs warm up and are not counted.
            pair = [("new", f"new{i}@example.org"), ("deleted", "gone@example.org")]
            for kind, address in pair if i % 2 else reversed(pair):
                settle(live_web.context)
                start = time.perf_counter()
                status, page = browser.request(
                    "POST", "/subscribe", {"csrf": token, "email": address}
                )
                elapsed = time.perf_counter() - start
                assert status == 200 and "Check your inbox" in page
                if i >= 5:
                    times[kind].append(elapsed)
        browser.close()
    new, deleted = statistics.median(times["new"]), statistics.median(times["deleted"])
    assert abs(new - deleted) <= 0.10 * max(new, deleted), (new * 1e3, deleted * 1e3)
    # The fixed answer time: never sooner, whatever the address.
    assert min(times["new"] + times["deleted"]) >= SUBSCRIBE_ANSWER_AFTER
    # The work was done after answering: every new address is there, the deleted one is not.
    assert store.count_subscribers() == {"unconfirmed": SAMPLES + 5}
    assert store.find_subscriber("gone@example.org") is None


def test_every_kind_of_address_gets_the_same_answer_and_only_new_ones_are_added(
    settings: Settings, store: Store
) -> None:
    store.add_subscriber(Subscriber(email="active@example.org", status=SubscriberStatus.ACTIVE))
    store.add_subscriber(Subscriber(email="left@example.org", status=SubscriberStatus.UNSUBSCRIBED))
    store.add_subscriber(Subscriber(email="wait@example.org", status=SubscriberStatus.UNCONFIRMED))
    subs.delete(store, settings.secret_key, "gone@example.org")
    addresses = ["new@example.org", "active@example.org", "left@example.org",
                 "wait@example.org", "gone@example.org"]  # fmt: skip
    with live_web(settings.model_copy(update={"subscribe_rate": 20}), store) as port:
        browser = Browser(port)
        token = browser.csrf()
        answers = {
            a: browser.request("POST", "/subscribe", {"csrf": token, "email": a}) for a in addresses
        }
        browser.close()
    assert len({(status, page) for status, page in answers.values()}) == 1
    status = {a: (s.status if (s := store.find_subscriber(a)) else None) for a in addresses}
    assert status == {
        "new@example.org": SubscriberStatus.UNCONFIRMED,
        "active@example.org": SubscriberStatus.ACTIVE,
        "left@example.org": SubscriberStatus.UNSUBSCRIBED,  # until they confirm again
        "wait@example.org": SubscriberStatus.UNCONFIRMED,
        "gone@example.org": None,
    }
    outbox = settings.outbox / "subscriptions"
    sent_to = sorted(p.read_text().split("To: ", 1)[1].split("\n", 1)[0].strip()
                     for p in outbox.glob("*.eml"))  # fmt: skip
    assert sent_to == ["left@example.org", "new@example.org", "wait@example.org"]


@pytest.mark.parametrize("email", ["not an address", "x@" + "a" * 400 + ".org"])
def test_a_malformed_address_is_still_told_at_once(
    settings: Settings, store: Store, email: str
) -> None:
    with live_web(settings, store) as port:
        browser = Browser(port)
        status, page = browser.request(
            "POST", "/subscribe", {"csrf": browser.csrf(), "email": email}
        )
        browser.close()
    assert status == 400 and "valid email address" in page


# --- confirmation by POST ------------------------------------------------------------------


def links_in(eml: Path) -> list[str]:
    """Every link in an email, from its text and HTML parts, as a mail scanner finds them."""
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    parts = [message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()]
    return sorted({u for part in parts for u in re.findall(r"https?://[^\s\"'<>]+", part)})


def test_a_scanner_fetching_every_link_of_the_confirmation_email_confirms_nobody(
    settings: Settings, store: Store
) -> None:
    with live_web(settings, store) as port:
        visitor = Browser(port)
        visitor.request("POST", "/subscribe", {"csrf": visitor.csrf(), "email": "ada@example.org"})
        settle(live_web.context)
        (eml,) = (settings.outbox / "subscriptions").glob("*.eml")
        links = links_in(eml)
        confirm = next(u for u in links if "/confirm/" in u)
        scanner = Browser(port)
        for url in links:  # a link scanner: GET every link, with and without redirects
            if url.startswith(str(settings.base_url).rstrip("/")):
                path = url.split("://", 1)[1].partition("/")[2]
                scanner.request("GET", "/" + path)
                scanner.request("HEAD", "/" + path)
        assert store.find_subscriber("ada@example.org").status is SubscriberStatus.UNCONFIRMED
        assert len(list((settings.outbox / "subscriptions").glob("*.eml"))) == 1  # no welcome

        # The person: the page shows a button; pressing it confirms, once.
        path = "/" + confirm.split("://", 1)[1].partition("/")[2]
        status, page = visitor.request("GET", path)
        assert status == 200 and "Confirm my subscription" in page and 'method="post"' in page
        assert store.find_subscriber("ada@example.org").status is SubscriberStatus.UNCONFIRMED
        token = SECRET_FIELDS.search(page).group(1)
        status, page = visitor.request("POST", path, {"csrf": token})
        assert status == 200 and "subscribed" in page
        assert store.find_subscriber("ada@example.org").status is SubscriberStatus.ACTIVE
        status, page = visitor.request("GET", path)
        assert status == 410 and "already used" in page
        forged = Browser(port)  # a POST without this site's form: refused
        assert forged.request("POST", path, {"csrf": token})[0] == 403
        for b in (visitor, scanner, forged):
            b.close()
