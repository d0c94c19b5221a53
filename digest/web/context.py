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
from digest.tokens import Signer
from digest.web.guard import PAGE_CSP, ClientLimiter, CsrfGuard, JobBacklog

__all__ = ["WebContext", "context_of"]


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


def context_of(request: Request) -> WebContext:
    """The WebContext of the app serving ``request``."""
    return request.app.state.digest
