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
from digest.store import Store
from digest.tokens import Purpose, Signer, TokenData, TokenError, TokenExpired
from digest.web.guard import PAGE_CSP, ClientLimiter, CsrfGuard, JobBacklog

__all__ = ["WebContext", "context_of", "sentence"]


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


def sentence(text: str) -> str:
    """``not valid: x`` -> ``Not valid: x.``"""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def context_of(request: Request) -> WebContext:
    """The WebContext of the app serving ``request``."""
    return request.app.state.digest
