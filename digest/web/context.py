"""What the web handlers share: one WebContext per app, reached from any request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.config import Settings
from digest.delivery.transports import Transport
from digest.mail.render import Renderer
from digest.mail.templates import PageTemplates
from digest.models import Subscriber
from digest.store import Store
from digest.tokens import Purpose, Signer, TokenData, TokenError, TokenExpired
from digest.web.guard import PAGE_CSP, ClientLimiter, CsrfGuard, JobBacklog

# Feedback presses per client per 10 minutes: a reader rating every paper of a long email,
# and changing their mind on a few, stays well under it.
FEEDBACK_PER_CLIENT = 120
# Library uploads and pastes per subscriber per 10 minutes: each may ask the arXiv API.
SEEDS_PER_SUBSCRIBER = 10

__all__ = [
    "FEEDBACK_PER_CLIENT",
    "SEEDS_PER_SUBSCRIBER",
    "WebContext",
    "body_too_big",
    "context_of",
    "sentence",
]


@dataclass
class WebContext:
    """Everything the handlers share; one per app, no module-level state."""

    settings: Settings
    store: Store
    signer: Signer
    csrf: CsrfGuard
    pages: PageTemplates
    renderer: Renderer
    transport: Transport
    limiter: ClientLimiter
    confirmations: ClientLimiter
    topics: list[str]
    owns_transport: bool = False
    backlog: JobBacklog = field(default_factory=JobBacklog)
    feedback_limiter: ClientLimiter = field(
        default_factory=lambda: ClientLimiter(FEEDBACK_PER_CLIENT)
    )
    seed_limiter: ClientLimiter = field(default_factory=lambda: ClientLimiter(SEEDS_PER_SUBSCRIBER))

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render one of templates/web/ with the site-wide context and safe headers."""
        html = self.pages.render(
            f"web/{name}", site=self.settings.name, accent=self.settings.accent_color, **context
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

    def forbidden(self) -> HTMLResponse:
        """The answer to a form without a valid CSRF pair."""
        return self.notice(
            "This form has expired",
            "For your safety the form must come from this site and be recent. "
            "Please go back, reload the page and try again.",
            status=403,
        )

    def too_many(self, wait: float) -> HTMLResponse:
        """The answer past a rate limit: 429 with Retry-After."""
        response = self.notice(
            "Too many requests", "Please wait a few minutes before trying again.", status=429
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response

    def subscriber_for(
        self, token: str, purpose: Purpose
    ) -> tuple[Subscriber | None, Response | None]:
        """(the subscriber a link's token names, None), else (None, the error page)."""
        data, error = self.verify(token, purpose)
        if error is not None:
            return None, error
        return self.subscriber_or_gone(data.subscriber_id)

    def subscriber_or_gone(self, sid: int) -> tuple[Subscriber | None, Response | None]:
        """(the subscriber, None), or (None, a 404 page) when their data was deleted."""
        subscriber = self.store.get_subscriber(sid)
        if subscriber is None:
            return None, self.notice(
                "Not on the list",
                "This address is no longer on our list; its data was deleted.",
                status=404,
                link=("/", "Subscribe"),
            )
        return subscriber, None

    def verify(self, token: str, purpose: Purpose) -> tuple[TokenData | None, Response | None]:
        """(what a link's token says, None) for a good token, else (None, the error page)."""
        try:
            return self.signer.verify(token, purpose), None
        except TokenExpired:
            return None, self.notice(
                "This link has expired",
                "Confirmation links work for 48 hours. Subscribe again to get a new one.",
                status=410,
                link=("/", "Subscribe again"),
            )
        except TokenError:
            return None, self.notice(
                "This link is not valid",
                "Please use the complete link from your email.",
                status=400,
            )


def body_too_big(request: Request, limit: int) -> bool:
    """True when a request body is over ``limit`` bytes or of unknown length.

    Browsers send a Content-Length with every form, and the server reads no more than it
    says; Starlette would otherwise spool an uploaded file of any size to disk.
    """
    length = request.headers.get("content-length", "")
    return not length.isdigit() or int(length) > limit


def sentence(text: str) -> str:
    """``not valid: x`` -> ``Not valid: x.``"""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def context_of(request: Request) -> WebContext:
    """The WebContext of the app serving ``request``."""
    return request.app.state.digest
