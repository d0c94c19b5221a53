"""The "More like this" / "Less like this" links of the emails, in `digest web`.

``GET /feedback/{token}?choice=more|less`` shows the paper and the choice with a button and
records nothing: mail scanners fetch every link of an email, and a scanner must not rate
every paper "more" and then "less". The button POSTs with the page's CSRF token; repeating
a choice changes nothing, the other choice replaces it, undo forgets it. The token
(digest.tokens, Purpose.FEEDBACK) names one subscriber and one paper; a paper the store does
not hold is still rated, by its arXiv id.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.logs import event
from digest.models import Paper, Subscriber
from digest.tokens import FeedbackData, Purpose, TokenError
from digest.web.context import WebContext, body_too_big, context_of

__all__ = ["CHOICES", "feedback", "feedback_page"]

log = logging.getLogger(__name__)

# A choice in the link or the form, and the rating it stores (None: forget it).
CHOICES: dict[str, int | None] = {"more": 1, "less": -1, "undo": None}
_RATED = {1: "more", -1: "less"}
AUTHORS_SHOWN = 6  # then "et al."
FORM_BYTES = 4096  # the feedback form: a CSRF token and a choice


def _reader(
    ctx: WebContext, token: str
) -> tuple[FeedbackData | None, Subscriber | None, Response | None]:
    """(the link's data, its subscriber, None), or (None, None, the page to show instead):
    a 400 for a broken link, a 404 when the subscriber's data was deleted."""
    try:
        data = ctx.signer.verify_feedback(token)
    except TokenError:
        return (
            None,
            None,
            ctx.notice(
                "This link is not valid",
                "Please use the complete “More like this” or “Less like this” link from your email.",
                status=400,
            ),
        )
    subscriber, error = ctx.subscriber_or_gone(data.subscriber_id)
    return data, subscriber, error


def _authors(paper: Paper | None) -> str:
    if paper is None or not paper.authors:
        return ""
    shown = ", ".join(paper.authors[:AUTHORS_SHOWN])
    return shown + (" et al." if len(paper.authors) > AUTHORS_SHOWN else "")


async def feedback_page(request: Request) -> Response:
    """GET /feedback/{token}: the paper, the choice and a button; changes nothing."""
    ctx = context_of(request)
    data, subscriber, error = _reader(ctx, request.path_params["token"])
    if error is not None:
        return error
    asked = request.query_params.get("choice", "")
    done = request.query_params.get("done", "")
    paper = ctx.store.get_paper(data.arxiv_id)
    current = _RATED.get(ctx.store.rating(subscriber.id, data.arxiv_id) or 0, "")
    return ctx.form_page(
        request,
        "feedback.html",
        arxiv_id=data.arxiv_id,
        paper=paper,
        authors=_authors(paper),
        link=paper.url if paper else f"https://arxiv.org/abs/{data.arxiv_id}",
        asked=asked if asked in ("more", "less") else "",
        current=current,
        # Only what is so: a hand-made ?done= cannot claim a choice that was not recorded.
        done=done if done == (current or "undo") else "",
        preferences=f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, subscriber.id)}",
    )


async def feedback(request: Request) -> Response:
    """POST /feedback/{token}: record more, less or undo, then show the page again."""
    ctx = context_of(request)
    client = request.client.host if request.client else "unknown"
    wait = ctx.feedback_limiter.hit(client)
    if wait:
        return ctx.too_many(wait)
    if body_too_big(request, FORM_BYTES):
        return ctx.notice("Too large", "This form sends a few hundred bytes.", status=413)
    form = await request.form()
    if not ctx.csrf.check(request, form):
        return ctx.forbidden()
    data, subscriber, error = _reader(ctx, request.path_params["token"])
    if error is not None:
        return error
    choice = str(form.get("choice") or "")
    if choice not in CHOICES:
        return ctx.notice("Choose more or less", "Please press one of the page's buttons.", 400)
    ctx.store.set_rating(subscriber.id, data.arxiv_id, CHOICES[choice])
    event(log, "web.feedback", subscriber=subscriber.id, choice=choice)
    # Post/redirect/get: reloading the answer does not send the form again.
    return RedirectResponse(f"{request.url.path}?done={choice}", status_code=303)
