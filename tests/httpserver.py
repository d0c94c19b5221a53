"""A real HTTP server on 127.0.0.1, in a thread, replaying recorded responses and faults.

Tests script it per path: a list of `Reply` values served in order (the last one repeats).
Every request is recorded so tests can check paths, query strings and headers.

    with ReplayServer() as server:
        server.route("/api/daily_papers", Reply.file(FIXTURES / "x.json"))
        server.route("/atom/cs.AI", Reply(429, headers={"Retry-After": "1"}), Reply.file(...))
        httpx.get(server.url + "/api/daily_papers")

A test module wraps it in a fixture of its own (see tests/test_sources_hf.py).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["Recorded", "Reply", "ReplayServer"]


@dataclass(frozen=True)
class Reply:
    """One scripted response: status, body, headers, and an optional delay before answering."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def file(cls, path: Path, status: int = 200, content_type: str | None = None) -> Reply:
        """Serve a recorded file; the type follows the suffix unless given."""
        kind = content_type or (
            "application/json" if path.suffix == ".json" else "application/atom+xml"
        )
        return cls(status, path.read_bytes(), {"Content-Type": kind})

    @classmethod
    def recorded(cls, path: Path) -> Reply:
        """Serve a `{url, status_code, body}` recording (the arxiv.py fixture format)."""
        data = json.loads(path.read_text())
        return cls(
            data["status_code"],
            data["body"].encode(),
            {"Content-Type": "application/atom+xml; charset=utf-8"},
        )

    @classmethod
    def json(cls, value: object, status: int = 200) -> Reply:
        """Serve ``value`` as JSON."""
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_path: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # the stdlib's name
        parts = urlsplit(self.path)
        self.server.owner._record(
            Recorded(parts.path, parse_qs(parts.query), dict(self.headers.items()), self.path)
        )
        reply = self.server.owner._next(parts.path, parse_qs(parts.query))
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ReplayServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-reply is expected in fault tests


class ReplayServer:
    """The server; use it as a context manager."""

    def __init__(self) -> None:
        # (path, required query items) -> replies; the most specific match answers.
        self._routes: dict[tuple[str, frozenset], list[Reply]] = {}
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *replies: Reply, query: dict[str, str] | None = None) -> None:
        """Answer ``path`` with ``replies`` in order; the last one repeats.

        With ``query``, only requests carrying those parameters match (``{"date": "..."}``).
        """
        with self._lock:
            self._routes[(path, frozenset((query or {}).items()))] = list(replies)

    def hits(self, path: str) -> list[Recorded]:
        """The requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _next(self, path: str, query: dict[str, list[str]]) -> Reply:
        given = {(k, v) for k, values in query.items() for v in values}
        with self._lock:
            matching = [
                (len(wanted), replies)
                for (route, wanted), replies in self._routes.items()
                if route == path and wanted <= given
            ]
            replies = max(matching, key=lambda m: m[0])[1] if matching else None
            if not replies:
                return Reply(404, b"no such route", {"Content-Type": "text/plain"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
