"""The preferences page of `digest web`: what a subscriber gets, their profile, their likes.

One page, several forms, each a POST with the page's CSRF token and an ``action``: ``save``
(topics, keywords, frequency, papers per email, and the profile: "Trending" to "For me",
people to follow, time zone and hour, empty days, follow-ups), ``remove`` and ``rate`` (a
liked or disliked paper, and its undo), ``seed`` (pasted ids or URLs, a BibTeX or CSL-JSON
file), ``pause``, ``resume``, ``delete``. Every mistake is one line on the page and a 400,
and nothing is saved.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest import subscribers as subs
from digest.errors import DigestError
from digest.logs import event, mask_email
from digest.models import Frequency, Paper, Subscriber
from digest.subscribers import seeding
from digest.subscribers.profile import parse_arxiv_id
from digest.tokens import Purpose
from digest.web.context import WebContext, body_too_big, context_of, sentence
from digest.web.profile_form import profile_fields, read_profile

__all__ = ["RATED_SHOWN", "preferences", "update_preferences"]

log = logging.getLogger(__name__)

NOTICES = {
    "saved": "Your preferences are saved.",
    "paused": "Paused: no emails until you resume.",
    "resumed": "Welcome back: your emails start with the next edition.",
    "unchanged": "Nothing changed.",
    "rated": "Saved: the paper is back in your profile.",
}
RATED_SHOWN = 50  # the newest likes (and dislikes) the page lists, each with its button
# A form with a library file is at most the file and a little more; a body larger than this is
# refused before it is read.
MAX_BODY = seeding.MAX_UPLOAD_BYTES + seeding.MAX_PASTE_CHARS * 4 + 64_000


def _rated(ctx: WebContext, ids: tuple[str, ...]) -> list[tuple[str, Paper | None]]:
    """The newest RATED_SHOWN of ``ids`` with their stored papers (None when not stored)."""
    return [(i, ctx.store.get_paper(i)) for i in reversed(ids[-RATED_SHOWN:])]


def _page(request: Request, subscriber: Subscriber, *, status: int = 200, **shown: Any) -> Response:
    ctx = context_of(request)
    return ctx.form_page(
        request,
        "preferences.html",
        status,
        subscriber=subscriber,
        masked=mask_email(subscriber.email),
        topics=ctx.topics,
        chosen=set(subscriber.topics),
        default_max=ctx.settings.max_papers,
        can_resume=subs.can_resume(subscriber),
        can_pause=subs.can_pause(subscriber),
        liked=_rated(ctx, subscriber.likes),
        disliked=_rated(ctx, subscriber.dislikes),
        max_upload=seeding.MAX_UPLOAD_BYTES,
        max_paste=seeding.MAX_PASTE_CHARS,
        **profile_fields(subscriber, ctx.settings.timezone),
        **{"notice": "", "error": "", "pasted": "", "removed": None, **shown},
    )


async def preferences(request: Request) -> Response:
    """GET /preferences/{token}: the subscriber's settings, profile and likes."""
    ctx = context_of(request)
    subscriber, error = ctx.subscriber_for(request.path_params["token"], Purpose.PREFERENCES)
    if error is not None:
        return error
    query = request.query_params
    notice = NOTICES.get(query.get("done", ""), "")
    removed = None
    if query.get("done") == "removed":
        try:  # the undo button for the paper just removed
            removed = (parse_arxiv_id(query.get("id", "")), query.get("was") == "less")
            notice = f"Removed {removed[0]} from your profile."
        except DigestError:
            notice = ""
    return _page(request, subscriber, notice=notice, removed=removed)


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


def _save(request: Request, subscriber: Subscriber, form: FormData) -> str:
    """Check every field of the settings form, then store them all; DigestError if one is bad."""
    ctx = context_of(request)
    max_papers = _parse_max(str(form.get("max_papers") or ""), ctx.settings.max_papers)
    topics = subs.resolve_topics([str(t) for t in form.getlist("topic")], ctx.topics)
    keywords = subs.check_keywords(
        subs.split_list(str(form.get("keywords") or "").replace(",", ";"))
    )
    profile = read_profile(form)
    ctx.store.update_preferences(
        subscriber.id,
        topics=topics,
        keywords=keywords,
        frequency=Frequency.WEEKLY if form.get("frequency") == "weekly" else Frequency.DAILY,
        max_papers=max_papers,
        **profile,
    )
    return "saved"


def _rate(request: Request, subscriber: Subscriber, form: FormData) -> str:
    """Forget a liked or disliked paper (``remove``), or rate it again (``rate``: its undo)."""
    ctx = context_of(request)
    if form.get("action") == "remove":
        arxiv_id = parse_arxiv_id(str(form.get("remove") or ""))
        was = "less" if arxiv_id in subscriber.dislikes else "more"
        ctx.store.set_rating(subscriber.id, arxiv_id, None)
        return f"removed&id={arxiv_id}&was={was}"
    arxiv_id = parse_arxiv_id(str(form.get("arxiv_id") or ""))
    ctx.store.set_rating(subscriber.id, arxiv_id, -1 if form.get("choice") == "less" else 1)
    return "rated"


async def update_preferences(request: Request) -> Response:
    """POST /preferences/{token}: save, remove or seed likes, pause, resume, delete my data."""
    ctx = context_of(request)
    subscriber, error = ctx.subscriber_for(request.path_params["token"], Purpose.PREFERENCES)
    if error is not None:
        return error
    if body_too_big(request, MAX_BODY):
        return _page(request, subscriber, status=413, error=_too_big())
    form = await request.form(max_part_size=seeding.MAX_UPLOAD_BYTES + 1)
    if not ctx.csrf.check(request, form):
        return ctx.forbidden()
    action = str(form.get("action") or "")
    sid = subscriber.id
    if action == "delete":
        return _delete(request, subscriber, form)
    if action == "seed":
        return await _seed(request, subscriber, form)
    try:
        if action == "pause":
            done = "paused" if subs.pause(ctx.store, sid) else "unchanged"
        elif action == "resume":
            done = "resumed" if subs.resume(ctx.store, subscriber) else "unchanged"
        elif action == "save":
            done = _save(request, subscriber, form)
        elif action in ("remove", "rate"):
            done = _rate(request, subscriber, form)
        else:
            done = "unchanged"
    except DigestError as exc:
        return _page(request, subscriber, status=400, error=sentence(str(exc)))
    event(log, "web.preferences", subscriber=sid, action=action[:16])
    # Post/redirect/get: reloading the page does not submit the form again.
    return RedirectResponse(f"{request.url.path}?done={done}", status_code=303)


def _too_big() -> str:
    return f"A file to upload can be at most {seeding.MAX_UPLOAD_BYTES // 1_000_000} MB."


def _delete(request: Request, subscriber: Subscriber, form: FormData) -> Response:
    ctx = context_of(request)
    if form.get("confirm_delete") != "yes":
        return _page(request, subscriber, status=400, error="Tick the box to confirm the deletion.")
    subs.erase(ctx.store, ctx.settings.secret_key, subscriber)
    event(log, "web.deleted", subscriber=subscriber.id)
    return ctx.notice(
        "Your data is deleted",
        "Your address and settings are gone and you will get no more emails from us.",
    )


async def _seed(request: Request, subscriber: Subscriber, form: FormData) -> Response:
    """Like the papers of a paste or an uploaded library; the answer says what was found."""
    ctx = context_of(request)
    pasted = str(form.get("ids") or "")
    upload = form.get("library")
    wait = ctx.seed_limiter.hit(str(subscriber.id))
    if wait:
        return ctx.too_many(wait)
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(seeding.MAX_UPLOAD_BYTES + 1)
            if len(data) > seeding.MAX_UPLOAD_BYTES:
                return _page(request, subscriber, status=413, error=_too_big())
            # In a worker thread: a 2 MB BibTeX file takes about 3 s to read.
            found = await run_in_threadpool(seeding.ids_in_library, data, upload.filename)
        else:
            found = seeding.ids_in_paste(pasted)
    except DigestError as exc:
        shown = pasted if len(pasted) <= seeding.MAX_PASTE_CHARS else ""
        return _page(request, subscriber, status=400, error=sentence(str(exc)), pasted=shown)
    report = await run_in_threadpool(
        seeding.seed_likes, ctx.store, ctx.settings, subscriber.id, found.ids
    )
    event(log, "web.seeded", subscriber=subscriber.id, liked=len(report.liked))
    # The page itself, not a redirect: the summary is not put in a URL anyone could forge.
    fresh = ctx.store.get_subscriber(subscriber.id) or subscriber
    return _page(request, fresh, notice=_seed_summary(found, report))


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _seed_summary(found: seeding.Found, report: seeding.SeedReport) -> str:
    """One sentence for the page: what was liked and what was passed over, and why."""
    parts = [f"Liked {_count(len(report.liked), 'paper', 'papers')}"]
    if report.already:
        parts.append(f"{report.already} already in your profile")
    if report.not_found:
        parts.append(f"not on arXiv: {', '.join(report.not_found[:3])}")
    if report.unchecked:
        parts.append(f"{len(report.unchecked)} kept unchecked (arXiv: {report.unchecked_reason})")
    if report.over_cap:
        parts.append(f"{report.over_cap} left out (at most {seeding.MAX_RATINGS:,} in a profile)")
    if found.left_out:
        parts.append(f"{found.left_out} more left out (at most {seeding.MAX_SEED_IDS} at a time)")
    if found.without_id:
        parts.append(f"{_count(found.without_id, 'entry', 'entries')} without an arXiv id")
    if found.unreadable:
        unread = _count(len(found.unreadable), "entry", "entries")
        parts.append(f"{unread} unreadable ({found.unreadable[0]})")
    return "; ".join(parts) + "."
