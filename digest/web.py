"""The web side of digest: subscribe, confirm, preferences, unsubscribe, archive, health.

A Starlette app made by ``create_app(settings, store)`` and served by uvicorn (`digest web`).
Pages are plain HTML and CSS (no JavaScript). Links in emails carry signed, purpose-bound
tokens (digest.tokens); forms carry a signed double-submit CSRF token; the one-click
unsubscribe POST (RFC 8058) needs neither cookie nor CSRF token.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest import subscribers as subs
from digest.config import ConfigError, Settings
from digest.errors import DigestError
from digest.logs import event, mask_email, redact
from digest.models import Edition, EditionStatus, Frequency, Subscriber, SubscriberStatus
from digest.store import Store
from digest.tokens import (
    MIN_SECRET_LENGTH,
    Purpose,
    Signer,
    TokenData,
    TokenError,
    TokenExpired,
)

__all__ = ["create_app"]

log = logging.getLogger(__name__)

CSRF_COOKIE = "digest_csrf"
CSRF_MAX_AGE = 24 * 3600  # a form left open for a day still works
HONEYPOT = "website"  # hidden from people by CSS; bots fill it in
RATE_WINDOW = 600.0  # settings.subscribe_rate requests per client per 10 minutes
# At most this many confirmation emails per address per day, whatever the number of clients
# asking: the form must not become a way to flood someone's inbox.
CONFIRMATIONS_PER_DAY = 3
# Our own pages load nothing but our stylesheet; tokens in URLs never leak through Referer.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The web version of an edition is email HTML: inline styles and remote images.
EDITION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
PREFERENCE_NOTICES = {
    "saved": "Your preferences are saved.",
    "paused": "Paused: no emails until you resume.",
    "resumed": "Welcome back: your emails start with the next edition.",
    "unchanged": "Nothing changed.",
}


class RateLimiter:
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


@dataclass
class WebContext:
    """Everything the handlers share; one per app, no module-level state."""

    settings: Settings
    store: Store
    signer: Signer
    csrf: URLSafeTimedSerializer
    pages: jinja2.Environment
    renderer: Any
    transport: Any
    limiter: RateLimiter
    confirmations: RateLimiter
    topics: list[str]
    owns_transport: bool = False
    background: set = field(default_factory=set)

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render one of templates/web/ with the site-wide context and safe headers."""
        html = self.pages.get_template(f"web/{name}").render(
            site=self.settings.name, accent=self.settings.accent_color, **context
        )
        return HTMLResponse(
            html,
            status_code=status,
            headers={"content-security-policy": PAGE_CSP, "cache-control": "no-store"},
        )

    def notice(self, title: str, message: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page with a heading and one paragraph (errors, "check your inbox", ...)."""
        return self.page("notice.html", status, title=title, message=message, **context)


def _ctx(request: Request) -> WebContext:
    return request.app.state.digest


def _page_environment(settings: Settings) -> jinja2.Environment:
    shipped = str(resources.files("digest.templates"))
    paths = [str(settings.templates_dir), shipped] if settings.templates_dir else [shipped]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# --- CSRF: a random value in a cookie, the same value signed in the form -----------------------


def _csrf_field(request: Request, response_cookies: dict[str, str]) -> str:
    """The signed form value for this browser's CSRF cookie (making the cookie if needed)."""
    ctx = _ctx(request)
    value = request.cookies.get(CSRF_COOKIE, "")
    if not 20 <= len(value) <= 64:
        value = secrets.token_urlsafe(24)
        response_cookies[CSRF_COOKIE] = value
    return ctx.csrf.dumps(value)


def _set_cookies(request: Request, response: Response, cookies: dict[str, str]) -> Response:
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


def _csrf_ok(request: Request, form: FormData) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    signed = form.get("csrf")
    if not cookie or not isinstance(signed, str):
        return False
    try:
        value = _ctx(request).csrf.loads(signed, max_age=CSRF_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, cookie)


def _forbidden(ctx: WebContext) -> HTMLResponse:
    return ctx.notice(
        "This form has expired",
        "For your safety the form must come from this site and be recent. "
        "Please go back, reload the page and try again.",
        status=403,
    )


def _in_background(
    ctx: WebContext, job: Callable[[], Awaitable[None]], what: str, sid: int
) -> BackgroundTask:
    """Run an email send after the response, so every answer takes the same time."""

    async def run() -> None:
        try:
            await job()
        except Exception as exc:  # noqa: BLE001 - the visitor already has their answer
            event(log, f"web.{what}_failed", level=logging.ERROR, subscriber=sid, error=str(exc))

    return BackgroundTask(run)


# --- subscribe -----------------------------------------------------------------------------------


def _subscribe_form(
    request: Request, *, status: int = 200, error: str = "", email: str = "", **values: Any
) -> Response:
    ctx = _ctx(request)
    cookies: dict[str, str] = {}
    response = ctx.page(
        "subscribe.html",
        status,
        csrf=_csrf_field(request, cookies),
        honeypot=HONEYPOT,
        topics=ctx.topics,
        chosen=set(values.get("chosen", ())),
        frequency=values.get("frequency", Frequency.DAILY),
        email=email,
        error=error,
    )
    return _set_cookies(request, response, cookies)


async def home(request: Request) -> Response:
    """GET /: the subscribe form."""
    return _subscribe_form(request)


async def subscribe(request: Request) -> Response:
    """POST /subscribe: ask for a confirmation email; the same answer whatever the address."""
    ctx = _ctx(request)
    client = request.client.host if request.client else "unknown"
    wait = ctx.limiter.hit(client)
    if wait:
        response = ctx.notice(
            "Too many requests",
            "Please wait a few minutes before trying again.",
            status=429,
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    form = await request.form()
    if not _csrf_ok(request, form):
        return _forbidden(ctx)
    checking = ctx.notice(
        "Check your inbox",
        "If the address can receive our emails, a confirmation link is on its way. "
        "Click it within 48 hours to start your subscription.",
    )
    if form.get(HONEYPOT):
        event(log, "web.subscribe_honeypot")
        return checking
    raw_email = str(form.get("email") or "")
    chosen = [t for t in form.getlist("topic") if t in ctx.topics]
    frequency = Frequency.WEEKLY if form.get("frequency") == "weekly" else Frequency.DAILY
    try:
        subscriber = subs.request_subscription(
            ctx.store,
            ctx.settings.secret_key,
            raw_email,
            topics=chosen,
            frequency=frequency,
        )
    except DigestError as exc:
        return _subscribe_form(
            request,
            status=400,
            error=_sentence(str(exc)),
            email=raw_email[:320],
            chosen=chosen,
            frequency=frequency,
        )
    if subscriber is not None and not ctx.confirmations.hit(str(subscriber.id)):

        async def send() -> None:
            await subs.send_confirmation(
                ctx.store, subscriber, renderer=ctx.renderer, transport=ctx.transport
            )

        checking.background = _in_background(ctx, send, "confirmation", subscriber.id)
    return checking


def _sentence(text: str) -> str:
    """``not valid: x`` -> ``Not valid: x.``"""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- confirm -------------------------------------------------------------------------------------


def _verify(
    ctx: WebContext, token: str, purpose: Purpose
) -> tuple[TokenData | None, Response | None]:
    """(what the token says, None) for a good token, else (None, the error page)."""
    try:
        data = ctx.signer.verify(token, purpose)
    except TokenExpired:
        return None, ctx.notice(
            "This link has expired",
            "Confirmation links work for 48 hours. Subscribe again to get a new one.",
            status=410,
            link=("/", "Subscribe again"),
        )
    except TokenError:
        return None, ctx.notice(
            "This link is not valid",
            "Please use the complete link from your email.",
            status=400,
        )
    return data, None


async def confirm(request: Request) -> Response:
    """GET /confirm/{token}: activate the subscription (the link works once), then welcome."""
    ctx = _ctx(request)
    data, error = _verify(ctx, request.path_params["token"], Purpose.CONFIRM)
    if error is not None:
        return error
    sid = data.subscriber_id
    subscriber = ctx.store.confirm_subscriber(sid, data.nonce)
    if subscriber is None:
        return ctx.notice(
            "This link was already used",
            "Each confirmation link works once. If you already confirmed, you are subscribed; "
            "otherwise subscribe again for a new link.",
            status=410,
            link=("/", "Subscribe"),
        )
    event(log, "web.confirmed", subscriber=sid)
    response = ctx.page(
        "welcome.html",
        subscriber=subscriber,
        preferences=f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, sid)}",
    )

    async def send() -> None:
        await ctx.transport.send(ctx.renderer.welcome(subscriber))

    response.background = _in_background(ctx, send, "welcome", sid)
    return response


# --- preferences ---------------------------------------------------------------------------------


def _preferences_page(
    request: Request,
    subscriber: Subscriber,
    *,
    status: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    ctx = _ctx(request)
    cookies: dict[str, str] = {}
    response = ctx.page(
        "preferences.html",
        status,
        csrf=_csrf_field(request, cookies),
        subscriber=subscriber,
        masked=mask_email(subscriber.email),
        topics=ctx.topics,
        chosen=set(subscriber.topics),
        default_max=ctx.settings.max_papers,
        notice=notice,
        error=error,
        can_resume=subscriber.status in (SubscriberStatus.PAUSED, SubscriberStatus.UNSUBSCRIBED)
        and subscriber.confirmed_at is not None,
        can_pause=subscriber.status is SubscriberStatus.ACTIVE,
    )
    return _set_cookies(request, response, cookies)


def _subscriber_for(
    request: Request, purpose: Purpose
) -> tuple[Subscriber | None, Response | None]:
    ctx = _ctx(request)
    data, error = _verify(ctx, request.path_params["token"], purpose)
    if error is not None:
        return None, error
    subscriber = ctx.store.get_subscriber(data.subscriber_id)
    if subscriber is None:
        return None, ctx.notice(
            "Not on the list",
            "This address is no longer on our list; its data was deleted.",
            status=404,
            link=("/", "Subscribe"),
        )
    return subscriber, None


async def preferences(request: Request) -> Response:
    """GET /preferences/{token}: the subscriber's settings form."""
    subscriber, error = _subscriber_for(request, Purpose.PREFERENCES)
    if error is not None:
        return error
    notice = PREFERENCE_NOTICES.get(request.query_params.get("done", ""), "")
    return _preferences_page(request, subscriber, notice=notice)


def _parse_max(text: str, limit: int) -> int | None:
    if not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        raise DigestError(f"Papers per email must be a number from 1 to {limit}.") from None
    if not 1 <= value <= limit:
        raise DigestError(f"Papers per email must be a number from 1 to {limit}.")
    return value


async def update_preferences(request: Request) -> Response:
    """POST /preferences/{token}: save, pause, resume, or delete my data."""
    ctx = _ctx(request)
    subscriber, error = _subscriber_for(request, Purpose.PREFERENCES)
    if error is not None:
        return error
    form = await request.form()
    if not _csrf_ok(request, form):
        return _forbidden(ctx)
    action = form.get("action")
    sid = subscriber.id
    if action == "delete":
        if form.get("confirm_delete") != "yes":
            return _preferences_page(
                request, subscriber, status=400, error="Tick the box to confirm the deletion."
            )
        ctx.store.delete_subscriber(sid, subs.email_hash(ctx.settings.secret_key, subscriber.email))
        event(log, "web.deleted", subscriber=sid)
        return ctx.notice(
            "Your data is deleted",
            "Your address and settings are gone and you will get no more emails from us.",
        )
    done = "unchanged"
    if action == "pause":
        if ctx.store.change_status(sid, SubscriberStatus.PAUSED, expect=[SubscriberStatus.ACTIVE]):
            done = "paused"
    elif action == "resume":
        if subscriber.confirmed_at is not None and ctx.store.change_status(
            sid,
            SubscriberStatus.ACTIVE,
            expect=[SubscriberStatus.PAUSED, SubscriberStatus.UNSUBSCRIBED],
        ):
            done = "resumed"
    elif action == "save":
        try:
            max_papers = _parse_max(str(form.get("max_papers") or ""), ctx.settings.max_papers)
        except DigestError as exc:
            return _preferences_page(request, subscriber, status=400, error=str(exc))
        ctx.store.update_preferences(
            sid,
            topics=[t for t in form.getlist("topic") if t in ctx.topics],
            keywords=subs.split_list(str(form.get("keywords") or "").replace(",", ";"))[:20],
            frequency=Frequency.WEEKLY if form.get("frequency") == "weekly" else Frequency.DAILY,
            max_papers=max_papers,
        )
        done = "saved"
    event(log, "web.preferences", subscriber=sid, action=str(action)[:16])
    # Post/redirect/get: reloading the page does not submit the form again.
    return RedirectResponse(f"{request.url.path}?done={done}", status_code=303)


# --- unsubscribe ---------------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """GET /unsubscribe/{token}: a page with a button; changes nothing (link scanners GET)."""
    ctx = _ctx(request)
    data, error = _verify(ctx, request.path_params["token"], Purpose.UNSUBSCRIBE)
    if error is not None:
        return error
    subscriber = ctx.store.get_subscriber(data.subscriber_id)
    done = subscriber is None or subscriber.status in (
        SubscriberStatus.UNSUBSCRIBED,
        SubscriberStatus.BOUNCED,
    )
    return ctx.page("unsubscribe.html", already=done)


async def unsubscribe(request: Request) -> Response:
    """POST /unsubscribe/{token}: RFC 8058 one-click; unsubscribes at once, 200, no redirect.

    Mail providers POST ``List-Unsubscribe=One-Click`` without cookies, so there is no CSRF
    check; the signed token is the authority. Repeating it is harmless.
    """
    ctx = _ctx(request)
    data, error = _verify(ctx, request.path_params["token"], Purpose.UNSUBSCRIBE)
    if error is not None:
        return error
    subscriber = ctx.store.get_subscriber(data.subscriber_id)
    preferences_link = None
    if subscriber is not None:
        if ctx.store.unsubscribe(subscriber.id):
            event(log, "web.unsubscribed", subscriber=subscriber.id)
        preferences_link = f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, subscriber.id)}"
    return ctx.page("unsubscribed.html", preferences=preferences_link)


# --- archive -------------------------------------------------------------------------------------


def _published(ctx: WebContext, limit: int = 100) -> list[Edition]:
    return [e for e in ctx.store.list_editions(limit=limit) if e.status is not EditionStatus.DRAFT]


async def archive(request: Request) -> Response:
    """GET /archive: every published edition, newest first."""
    ctx = _ctx(request)
    return ctx.page("archive.html", editions=_published(ctx))


async def archive_feed(request: Request) -> Response:
    """GET /archive/feed.xml: an Atom feed of the newest editions."""
    ctx = _ctx(request)
    editions = [ctx.store.get_edition(e.id) for e in _published(ctx, limit=20)]
    base = str(ctx.settings.base_url).rstrip("/")
    xml = ctx.pages.get_template("web/feed.xml").render(
        site=ctx.settings.name,
        base=base,
        editions=[e for e in editions if e is not None],
        updated=max((e.created_at for e in editions if e and e.created_at), default=None),
    )
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


async def archive_edition(request: Request) -> Response:
    """GET /archive/{edition_key}: the web version of one edition ("view in browser")."""
    ctx = _ctx(request)
    edition = ctx.store.get_edition(str(request.path_params["edition_key"]))
    if edition is None or edition.status is EditionStatus.DRAFT:
        return ctx.notice(
            "No such edition",
            "This edition does not exist (yet).",
            status=404,
            link=("/archive", "All editions"),
        )
    return HTMLResponse(
        ctx.renderer.edition_page(edition), headers={"content-security-policy": EDITION_CSP}
    )


# --- small things --------------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_on(accent: str) -> str:
    """White or near-black, whichever reads better on a button of colour ``accent``."""
    lum = _luminance(accent)
    white, dark = 1.05 / (lum + 0.05), (lum + 0.05) / (_luminance("#1f2328") + 0.05)
    return "#ffffff" if white >= dark else "#1f2328"


async def stylesheet(request: Request) -> Response:
    """GET /style.css: the pages' one stylesheet (accent colour from the settings)."""
    ctx = _ctx(request)
    accent = ctx.settings.accent_color
    css = ctx.pages.get_template("web/style.css").render(accent=accent, on_accent=text_on(accent))
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when the database answers, 503 when it does not."""
    try:
        _ctx(request).store.count_subscribers()  # a real query on a real table
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        event(log, "web.health_failed", level=logging.ERROR, error=str(exc))
        return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


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


def create_app(
    settings: Settings, store: Store, *, transport: Any = None, renderer: Any = None
) -> Starlette:
    """The digest web app for these settings and store.

    ``transport`` and ``renderer`` default to ``make_transport(settings)`` and
    ``Renderer(settings)``; tests pass a MemoryTransport. Raises ConfigError without a
    usable DIGEST_SECRET_KEY, since every link and form is signed with it.
    """
    if len(settings.secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"DIGEST_SECRET_KEY: `digest web` needs a secret of at least {MIN_SECRET_LENGTH} "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    owns_transport = transport is None
    if transport is None:
        from digest.transports import make_transport

        transport = make_transport(settings, edition_key="subscriptions")
    if renderer is None:
        from digest.render import Renderer

        renderer = Renderer(settings)
    ctx = WebContext(
        settings=settings,
        store=store,
        signer=Signer(settings.secret_key),
        csrf=URLSafeTimedSerializer(settings.secret_key, salt="digest.csrf"),
        pages=_page_environment(settings),
        renderer=renderer,
        transport=transport,
        limiter=RateLimiter(settings.subscribe_rate),
        confirmations=RateLimiter(CONFIRMATIONS_PER_DAY, window=86400),
        topics=subs.known_topics(settings),
        owns_transport=owns_transport,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if ctx.owns_transport:
            await ctx.transport.aclose()

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/subscribe", lambda request: RedirectResponse("/", 303), methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["GET"]),
        Route("/preferences/{token}", preferences, methods=["GET"]),
        Route("/preferences/{token}", update_preferences, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
        Route("/archive", archive, methods=["GET"]),
        Route("/archive/feed.xml", archive_feed, methods=["GET"]),
        Route("/archive/{edition_key}", archive_edition, methods=["GET"]),
        Route("/style.css", stylesheet, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware)
    app.state.digest = ctx
    return app
