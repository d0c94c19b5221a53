"""A small HTTP client for `digest web` as a person's browser uses it: one connection, the CSRF
cookie kept, forms sent urlencoded or as multipart/form-data (file uploads), 303s followed."""

from __future__ import annotations

import contextlib
import http.client
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.conftest import TEST_SECRET
from tests.webserver import digest_web

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Answer:
    """One response: status, headers (lower-cased names) and body text."""

    status: int
    headers: dict[str, str]
    text: str

    def csrf(self) -> str:
        """The page's CSRF form value."""
        match = CSRF_FIELD.search(self.text)
        assert match, f"no CSRF field on the page ({self.status})"
        return match.group(1)

    def alerts(self) -> list[str]:
        """The text of each error line on the page."""
        return re.findall(r'role="alert">([^<]*)<', self.text)

    def notice(self) -> str:
        """The text of the page's notice line ("" when there is none)."""
        match = re.search(r'role="status">([^<]*)<', self.text)
        return match.group(1) if match else ""


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type, as a browser sends a form with files."""
    boundary = "----digest" + secrets.token_hex(8)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class WebClient:
    """A browser for tests: ``get``/``post`` a path of the served base URL."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        self.cookie = ""

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Answer:
        """One request; the CSRF cookie is sent and kept."""
        head = {"Cookie": self.cookie} if self.cookie else {}
        self.conn.request(method, path, body=body, headers={**head, **(headers or {})})
        response = self.conn.getresponse()
        text = response.read().decode()
        cookie = response.getheader("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)

    def get(self, path: str) -> Answer:
        """GET ``path``."""
        return self.request("GET", path)

    def post(
        self,
        path: str,
        form: dict,
        files: dict[str, tuple[str, bytes]] | None = None,
        follow: bool = True,
    ) -> Answer:
        """POST a form (multipart when there are files); follow a 303 to its page."""
        if files is not None:
            body, kind = multipart(form, files)
        else:
            body, kind = urlencode(form, doseq=True).encode(), "application/x-www-form-urlencoded"
        answer = self.request("POST", path, body, {"Content-Type": kind})
        if follow and answer.status == 303:
            location = answer.headers["location"]
            if "://" in location:
                location = "/" + location.split("://", 1)[1].partition("/")[2]
            return self.get(location)
        return answer

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@contextlib.contextmanager
def served(db_url: str, folder: Path, arxiv_url: str = "http://127.0.0.1:9") -> Iterator[str]:
    """`digest web` on ``db_url`` in its own process, the arXiv API at ``arxiv_url``.

    Yields the base URL; the emails it sends go to ``folder/outbox``. The default arXiv URL
    refuses connections: no test reaches beyond 127.0.0.1.
    """
    env = {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_TRANSPORT": "file",
        "DIGEST_OUTBOX": str(folder / "outbox"),
        "DIGEST_FROM": "digest <digest@example.org>",
        "DIGEST_ARXIV_API_URL": arxiv_url,
        "DIGEST_ARXIV_API_INTERVAL": "0",
    }
    with digest_web(env, folder) as base:
        yield base
