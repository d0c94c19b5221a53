"""The web app: ``create_app(settings, store)`` mounts every page of `digest web`.

Pages are plain HTML and CSS (no JavaScript). Subscribe and confirm live in digest.web.optin,
preferences in digest.web.preferences, feedback links in digest.web.feedback, unsubscribe in
digest.web.subscription, the archive in digest.web.archive;
CSRF, honeypot, rate limits and security headers in digest.web.guard. Here: the stylesheet,
the health check and the app itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from digest import subscribers as subs
from digest.config import Settings
from digest.delivery.transports import Transport, make_transport
from digest.logs import event
from digest.mail.render import Renderer
from digest.mail.templates import PageTemplates
from digest.store import Store
from digest.tokens import Signer, require_secret
from digest.web import archive, feedback, optin, preferences, subscription
from digest.web.context import WebContext, context_of
from digest.web.guard import CONFIRMATIONS_PER_DAY, ClientLimiter, CsrfGuard, GuardMiddleware

__all__ = ["create_app", "healthz", "stylesheet", "text_on"]

log = logging.getLogger(__name__)


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
    ctx = context_of(request)
    accent = ctx.settings.accent_color
    css = ctx.pages.render("web/style.css", accent=accent, on_accent=text_on(accent))
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when the database answers, 503 when it does not."""
    try:
        context_of(request).store.count_subscribers()  # a real query on a real table
    except Exception as exc:  # any failure means unhealthy
        event(log, "web.health_failed", level=logging.ERROR, error=str(exc))
        return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


# --- the app -------------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    store: Store,
    *,
    transport: Transport | None = None,
    renderer: Renderer | None = None,
) -> Starlette:
    """The digest web app for these settings and store.

    ``transport`` and ``renderer`` default to ``make_transport(settings)`` and
    ``Renderer(settings)``; tests pass a MemoryTransport. Raises ConfigError without a
    usable DIGEST_SECRET_KEY, since every link and form is signed with it.
    """
    require_secret(settings.secret_key)
    owns_transport = transport is None
    if transport is None:
        transport = make_transport(settings, edition_key="subscriptions")
    ctx = WebContext(
        settings=settings,
        store=store,
        signer=Signer(settings.secret_key),
        csrf=CsrfGuard(settings.secret_key),
        pages=PageTemplates(settings.templates_dir),
        renderer=renderer or Renderer(settings),
        transport=transport,
        limiter=ClientLimiter(settings.subscribe_rate),
        confirmations=ClientLimiter(CONFIRMATIONS_PER_DAY, window=86400),
        topics=subs.known_topics(settings),
        owns_transport=owns_transport,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if ctx.owns_transport:
            await ctx.transport.aclose()

    routes = [
        Route("/", optin.home, methods=["GET"]),
        Route("/subscribe", optin.subscribe, methods=["POST"]),
        Route("/subscribe", lambda request: RedirectResponse("/", 303), methods=["GET"]),
        Route("/confirm/{token}", optin.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", optin.confirm, methods=["POST"]),
        Route("/preferences/{token}", preferences.preferences, methods=["GET"]),
        Route("/preferences/{token}", preferences.update_preferences, methods=["POST"]),
        Route("/feedback/{token}", feedback.feedback_page, methods=["GET"]),
        Route("/feedback/{token}", feedback.feedback, methods=["POST"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe, methods=["POST"]),
        Route("/archive", archive.archive, methods=["GET"]),
        Route("/archive/feed.xml", archive.archive_feed, methods=["GET"]),
        Route("/archive/search", archive.archive_search, methods=["GET"]),
        Route("/archive/{edition_key}", archive.archive_edition, methods=["GET"]),
        Route("/style.css", stylesheet, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware)
    app.state.digest = ctx
    return app
