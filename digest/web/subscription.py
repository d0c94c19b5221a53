"""The pages of an existing subscription in `digest web`: preferences and unsubscribe.

Links in emails carry signed, purpose-bound tokens (digest.tokens); forms carry a CSRF token
(digest.web.guard); the one-click unsubscribe POST (RFC 8058) needs neither cookie nor CSRF
token. Subscribing and confirming are in digest.web.optin. The handlers are mounted by
`digest.web.create_app`.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest import subscribers as subs
from digest.errors import DigestError
from digest.logs import event, mask_email
from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.tokens import Purpose
from digest.web.context import context_of, sentence

__all__ = [
    "preferences",
    "unsubscribe",
    "unsubscribe_page",
    "update_preferences",
]

log = logging.getLogger(__name__)

PREFERENCE_NOTICES = {
    "saved": "Your preferences are saved.",
    "paused": "Paused: no emails until you resume.",
    "resumed": "Welcome back: your emails start with the next edition.",
    "unchanged": "Nothing changed.",
}


# --- preferences ---------------------------------------------------------------------------------


def _preferences_page(
    request: Request,
    subscriber: Subscriber,
    *,
    status: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
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
        notice=notice,
        error=error,
        can_resume=subs.can_resume(subscriber),
        can_pause=subs.can_pause(subscriber),
    )


def _subscriber_for(
    request: Request, purpose: Purpose
) -> tuple[Subscriber | None, Response | None]:
    ctx = context_of(request)
    data, error = ctx.verify(request.path_params["token"], purpose)
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
    ctx = context_of(request)
    subscriber, error = _subscriber_for(request, Purpose.PREFERENCES)
    if error is not None:
        return error
    form = await request.form()
    if not ctx.csrf.check(request, form):
        return ctx.forbidden()
    action = form.get("action")
    sid = subscriber.id
    if action == "delete":
        if form.get("confirm_delete") != "yes":
            return _preferences_page(
                request, subscriber, status=400, error="Tick the box to confirm the deletion."
            )
        subs.erase(ctx.store, ctx.settings.secret_key, subscriber)
        event(log, "web.deleted", subscriber=sid)
        return ctx.notice(
            "Your data is deleted",
            "Your address and settings are gone and you will get no more emails from us.",
        )
    done = "unchanged"
    if action == "pause":
        if subs.pause(ctx.store, sid):
            done = "paused"
    elif action == "resume":
        if subs.resume(ctx.store, subscriber):
            done = "resumed"
    elif action == "save":
        try:
            max_papers = _parse_max(str(form.get("max_papers") or ""), ctx.settings.max_papers)
            topics = subs.resolve_topics([str(t) for t in form.getlist("topic")], ctx.topics)
            keywords = subs.check_keywords(
                subs.split_list(str(form.get("keywords") or "").replace(",", ";"))
            )
        except DigestError as exc:
            return _preferences_page(request, subscriber, status=400, error=sentence(str(exc)))
        ctx.store.update_preferences(
            sid,
            topics=topics,
            keywords=keywords,
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
    ctx = context_of(request)
    data, error = ctx.verify(request.path_params["token"], Purpose.UNSUBSCRIBE)
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
    ctx = context_of(request)
    data, error = ctx.verify(request.path_params["token"], Purpose.UNSUBSCRIBE)
    if error is not None:
        return error
    subscriber = ctx.store.get_subscriber(data.subscriber_id)
    preferences_link = None
    if subscriber is not None:
        if ctx.store.unsubscribe(subscriber.id):
            event(log, "web.unsubscribed", subscriber=subscriber.id)
        preferences_link = f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, subscriber.id)}"
    return ctx.page("unsubscribed.html", preferences=preferences_link)
