"""`digest web` under attack, through a real uvicorn on 127.0.0.1 (issue 12, items 4-6, confirm).

Forwarded headers count only from trusted proxies; subscribe answers new and deleted
addresses in the same time; every text a subscriber controls is capped with a clear 400;
a confirmation link changes nothing until the person presses the button.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest

from digest.config import ConfigError, Settings, load_settings
from digest.store import Store
from digest.web.server import make_server

SECRET_FIELDS = re.compile(r'name="csrf" value="([^"]+)"')


@contextmanager
def live_web(settings: Settings, store: Store) -> Iterator[int]:
    """The app in the one uvicorn set-up of `digest web`, on a free port; yields the port."""
    server = make_server(settings, store, host="127.0.0.1", port=0, handle_signals=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
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
