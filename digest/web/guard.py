"""Form and request protection for `digest web`: CSRF, honeypot, rate limits, safe headers.

Every form carries a signed double-submit CSRF token (a random value in a cookie, the same
value signed in the form); the subscribe form has a honeypot field and is rate limited per
client and per address; every response gets security headers, and every request is logged
with the tokens in its path redacted.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.logs import event, redact
from digest.mail.text import THUMBNAIL_HOSTS

__all__ = [
    "CONFIRMATIONS_PER_DAY",
    "CSRF_COOKIE",
    "HONEYPOT",
    "PAGE_CSP",
    "SUBSCRIBE_ANSWER_AFTER",
    "CsrfGuard",
    "GuardMiddleware",
    "ClientLimiter",
    "JobBacklog",
]

# The web app's records keep the logger name "digest.web" wherever the code lives, so log
# filters and dashboards written against it keep working.
log = logging.getLogger(__name__)

CSRF_COOKIE = "digest_csrf"
CSRF_MAX_AGE = 24 * 3600  # a form left open for a day still works
HONEYPOT = "website"  # hidden from people by CSS; bots fill it in
RATE_WINDOW = 600.0  # settings.subscribe_rate requests per client per 10 minutes
# At most this many confirmation emails per address per day, whatever the number of clients
# asking: the form must not become a way to flood someone's inbox.
CONFIRMATIONS_PER_DAY = 3
# The subscribe answer goes out this many seconds after the request came in, never sooner, so
# its time cannot tell a new address from a deleted one (the lookup runs after answering).
SUBSCRIBE_ANSWER_AFTER = 0.05
# Our own pages load nothing but our stylesheet and the papers' thumbnails, from the hosts
# the sources keep them on; tokens in URLs never leak through Referer.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; "
    f"img-src {' '.join(f'https://{host}' for host in THUMBNAIL_HOSTS)}; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class ClientLimiter:
    """A sliding-window counter per client: at most ``limit`` hits in ``window`` seconds.

    Kept in memory: `digest web` is one process, and a restart forgetting the counts is fine.
    """

    def __init__(self, limit: int, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float:
        """Count a hit; 0 when allowed, else the seconds until the next hit is allowed."""
        now = time.monotonic() if now is None else now
        if len(self._hits) > 10_000:  # forget idle clients so memory stays bounded
            self._hits = {k: q for k, q in self._hits.items() if q and q[-1] > now - self.window}
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return 0.0


class JobBacklog:
    """A bound on work left running after the answer (subscribe's lookup and email).

    Answering first keeps every subscribe answer alike in time; the bound keeps a flood of
    requests from many clients from piling up unbounded work behind the answers.
    """

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.pending = 0

    def enter(self) -> bool:
        """Take a place for one job; False when the backlog is full (the job is dropped)."""
        if self.pending >= self.limit:
            return False
        self.pending += 1
        return True

    def leave(self) -> None:
        """Give the place back when the job is done."""
        self.pending -= 1


class CsrfGuard:
    """Double-submit CSRF: a random value in a cookie, the same value signed in the form.

    A cross-site form cannot read our cookie, so it cannot send the matching value; the
    signature (salt ``digest.csrf``) also makes the form value expire after a day.
    """

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="digest.csrf")

    def field(self, request: Request, response_cookies: dict[str, str]) -> str:
        """The signed form value for this browser's CSRF cookie (making the cookie if needed).

        A new cookie is put in ``response_cookies``; pass them to `set_cookies` on the page.
        """
        value = request.cookies.get(CSRF_COOKIE, "")
        if not 20 <= len(value) <= 64:
            value = secrets.token_urlsafe(24)
            response_cookies[CSRF_COOKIE] = value
        return self._serializer.dumps(value)

    @staticmethod
    def set_cookies(request: Request, response: Response, cookies: dict[str, str]) -> Response:
        """Attach the cookies `field` made to ``response``: HttpOnly, SameSite=Strict."""
        for name, value in cookies.items():
            response.set_cookie(
                name,
                value,
                max_age=CSRF_MAX_AGE,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
        return response

    def check(self, request: Request, form: FormData) -> bool:
        """True when the form's signed token is recent and matches this browser's cookie."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        signed = form.get("csrf")
        if not cookie or not isinstance(signed, str):
            return False
        try:
            value = self._serializer.loads(signed, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, cookie)


class GuardMiddleware:
    """Adds security headers and logs each request with tokens redacted from the path.

    uvicorn's own access log would print token URLs, so `digest web` turns it off.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            event(
                log,
                "web.request",
                method=scope["method"],
                path=redact(scope["path"]),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
