"""The web side of digest: the Starlette app, its shared context, and the public pages.

A Starlette app made by ``create_app(settings, store)`` and served by uvicorn (`digest web`).
Pages are plain HTML and CSS (no JavaScript). The subscription pages (subscribe, confirm,
preferences, unsubscribe) live in digest.websubscription; CSRF, honeypot, rate limits and
security headers in digest.webguard. Here: the archive, its Atom feed, the stylesheet and the
health check.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from digest import subscribers as subs
from digest.config import ConfigError, Settings
from digest.logs import event
from digest.models import Edition, EditionStatus
from digest.store import Store
from digest.tokens import MIN_SECRET_LENGTH, Signer
from digest.web import subscription
from digest.web.guard import (
    CONFIRMATIONS_PER_DAY,
    EDITION_CSP,
    PAGE_CSP,
    CsrfGuard,
    GuardMiddleware,
    RateLimiter,
)

__all__ = ["WebContext", "create_app", "text_on"]

log = logging.getLogger(__name__)


@dataclass
class WebContext:
    """Everything the handlers share; one per app, no module-level state."""

    settings: Settings
    store: Store
    signer: Signer
    csrf: CsrfGuard
    pages: jinja2.Environment
    renderer: Any
    transport: Any
    limiter: RateLimiter
    confirmations: RateLimiter
    topics: list[str]
    owns_transport: bool = False

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

    def form_page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """A page holding a form: its CSRF field filled in, and the cookie it pairs with set."""
        cookies: dict[str, str] = {}
        response = self.page(name, status, csrf=self.csrf.field(request, cookies), **context)
        return CsrfGuard.set_cookies(request, response, cookies)

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


# --- the app -------------------------------------------------------------------------------------


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
        from digest.delivery.transports import make_transport

        transport = make_transport(settings, edition_key="subscriptions")
    if renderer is None:
        from digest.mail.render import Renderer

        renderer = Renderer(settings)
    ctx = WebContext(
        settings=settings,
        store=store,
        signer=Signer(settings.secret_key),
        csrf=CsrfGuard(settings.secret_key),
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
        Route("/", subscription.home, methods=["GET"]),
        Route("/subscribe", subscription.subscribe, methods=["POST"]),
        Route("/subscribe", lambda request: RedirectResponse("/", 303), methods=["GET"]),
        Route("/confirm/{token}", subscription.confirm, methods=["GET"]),
        Route("/preferences/{token}", subscription.preferences, methods=["GET"]),
        Route("/preferences/{token}", subscription.update_preferences, methods=["POST"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe, methods=["POST"]),
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
