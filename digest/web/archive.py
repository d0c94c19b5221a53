"""The archive, the site's papers page: editions with their themes, each edition, search, feed.

Plain HTML and CSS like every page here. Each page carries the subscribe box (posting to
/subscribe with its CSRF token); thumbnails load lazily from where the source hosts them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from digest.mail.text import clean, shorten
from digest.models import EditionStatus, Frequency
from digest.web.cards import PaperCard, long_date, short_date
from digest.web.context import WebContext, context_of
from digest.web.guard import HONEYPOT

__all__ = [
    "EDITIONS_PER_PAGE",
    "PAPERS_PER_PAGE",
    "SEARCH_RESULTS",
    "archive",
    "archive_edition",
    "archive_feed",
    "archive_search",
]

# Pages stay under 50 KB of HTML before images: a paper card is at most about 1.1 KB.
EDITIONS_PER_PAGE = 20  # with their themes and lead papers, about 25 KB
PAPERS_PER_PAGE = 40  # an edition of more (a busy week) goes on over several pages
SEARCH_RESULTS = 40
QUERY_CHARS = 200


def _page(request: Request, name: str, status: int = 200, **context: object) -> Response:
    """An archive page: the subscribe box's CSRF token and honeypot filled in."""
    ctx = context_of(request)
    return ctx.form_page(request, f"archive/{name}", status, honeypot=HONEYPOT, **context)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


async def archive(request: Request) -> Response:
    """GET /archive: published editions newest first, each with its themes and lead papers."""
    ctx = context_of(request)
    page = _page_number(request)
    editions, total = ctx.store.published_editions(
        EDITIONS_PER_PAGE, offset=(page - 1) * EDITIONS_PER_PAGE
    )
    pages = max(1, -(-total // EDITIONS_PER_PAGE))
    shown = [
        {
            "key": o.edition.key,
            "name": long_date(o.edition.date),
            "weekly": o.edition.frequency is Frequency.WEEKLY,
            "size": o.size,
            "themes": [
                {"label": clean(t.label), "size": t.size, "lead": PaperCard.of(t.lead)}
                for t in o.themes
            ],
        }
        for o in editions
    ]
    status = 404 if page > pages else 200
    return _page(request, "index.html", status, editions=shown, page=page, pages=pages)


def _edition_pages(themes: list[list[PaperCard]], per_page: int) -> list[list[dict]]:
    """The themes cut into pages of at most ``per_page`` papers, a long theme over several.

    Each page is a list of parts: ``number`` (1-based theme), its ``papers`` on this page,
    ``first`` (the theme starts here).
    """
    pages: list[list[dict]] = [[]]
    room = per_page
    for number, cards in enumerate(themes, 1):
        start = 0
        while start < len(cards):
            if room == 0:
                pages.append([])
                room = per_page
            part = cards[start : start + room]
            pages[-1].append({"number": number, "papers": part, "first": start == 0})
            start += len(part)
            room -= len(part)
    return pages


async def archive_edition(request: Request) -> Response:
    """GET /archive/{edition_key}: one edition, theme by theme, each paper as a card."""
    ctx = context_of(request)
    key = str(request.path_params["edition_key"])
    edition = ctx.store.get_edition(key)
    if edition is None or edition.status is EditionStatus.DRAFT:
        return ctx.notice(
            "No such edition",
            "This edition does not exist (yet).",
            status=404,
            link=("/archive", "All editions"),
        )
    shown = [t for t in edition.themes if t.papers]
    pages = _edition_pages([[PaperCard.of(p) for p in t.papers] for t in shown], PAPERS_PER_PAGE)
    page = _page_number(request)
    if page > len(pages):
        return ctx.notice("No such page", "This edition is shorter.", status=404,
                          link=(f"/archive/{key}", "The edition"))  # fmt: skip
    starts = {
        part["number"]: n for n, parts in enumerate(pages, 1) for part in parts if part["first"]
    }
    themes = [
        {"label": clean(t.label) or "Papers", "size": len(t.papers), "page": starts[n]}
        for n, t in enumerate(shown, 1)
    ]
    return _page(
        request,
        "edition.html",
        key=key,
        heading=long_date(edition.date),
        weekly=edition.frequency is Frequency.WEEKLY,
        size=len(edition.papers),
        themes=themes,
        parts=pages[page - 1],
        page=page,
        pages=len(pages),
    )


async def archive_search(request: Request) -> Response:
    """GET /archive/search?q=: every stored paper matching all the words, most upvoted first."""
    ctx = context_of(request)
    query = shorten(clean(request.query_params.get("q", "")), QUERY_CHARS)
    result = ctx.store.search_papers(query, limit=SEARCH_RESULTS) if query else None
    hits = [
        {
            "card": PaperCard.of(hit.paper),
            "edition": hit.edition_key,
            "edition_day": short_date(hit.edition_date) if hit.edition_date else "",
            "theme": clean(hit.theme),
        }
        for hit in (result.hits if result else ())
    ]
    return _page(
        request, "search.html", query=query, hits=hits, total=result.total if result else 0
    )


async def archive_feed(request: Request) -> Response:
    """GET /archive/feed.xml: an Atom feed of the newest editions."""
    ctx = context_of(request)
    editions = [ctx.store.get_edition(o.edition.id) for o in _newest(ctx)]
    base = str(ctx.settings.base_url).rstrip("/")
    xml = ctx.pages.render(
        "web/feed.xml",
        site=ctx.settings.name,
        base=base,
        editions=[e for e in editions if e is not None],
        updated=max((e.created_at for e in editions if e and e.created_at), default=None),
    )
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


def _newest(ctx: WebContext, limit: int = 20) -> list:
    return ctx.store.published_editions(limit)[0]
