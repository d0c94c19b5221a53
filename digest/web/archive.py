"""The archive pages: every published edition, its Atom feed, and each edition's web page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.models import Edition, EditionStatus
from digest.web.context import WebContext, context_of
from digest.web.guard import EDITION_CSP

__all__ = ["archive", "archive_edition", "archive_feed"]


def _published(ctx: WebContext, limit: int = 100) -> list[Edition]:
    return [e for e in ctx.store.list_editions(limit=limit) if e.status is not EditionStatus.DRAFT]


async def archive(request: Request) -> Response:
    """GET /archive: every published edition, newest first."""
    ctx = context_of(request)
    return ctx.page("archive.html", editions=_published(ctx))


async def archive_feed(request: Request) -> Response:
    """GET /archive/feed.xml: an Atom feed of the newest editions."""
    ctx = context_of(request)
    editions = [ctx.store.get_edition(e.id) for e in _published(ctx, limit=20)]
    base = str(ctx.settings.base_url).rstrip("/")
    xml = ctx.pages.render(
        "web/feed.xml",
        site=ctx.settings.name,
        base=base,
        editions=[e for e in editions if e is not None],
        updated=max((e.created_at for e in editions if e and e.created_at), default=None),
    )
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


async def archive_edition(request: Request) -> Response:
    """GET /archive/{edition_key}: the web version of one edition ("view in browser")."""
    ctx = context_of(request)
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
