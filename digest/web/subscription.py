"""The subscription pages of `digest web`: subscribe, confirm, preferences, unsubscribe.

Links in emails carry signed, purpose-bound tokens (digest.tokens); forms carry a CSRF token
(digest.web.guard); the one-click unsubscribe POST (RFC 8058) needs neither cookie nor CSRF
token. The handlers are mounted by `digest.web.create_app`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest import subscribers as subs
from digest.errors import DigestError
from digest.logs import event, mask_email
from digest.models import Frequency, Message, Subscriber, SubscriberStatus
from digest.tokens import Purpose, TokenData, TokenError, TokenExpired
from digest.web.context import WebContext, context_of
from digest.web.guard import HONEYPOT, SUBSCRIBE_ANSWER_AFTER

__all__ = [
    "confirm",
    "confirm_page",
    "home",
    "preferences",
    "subscribe",
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


def _forbidden(ctx: WebContext) -> HTMLResponse:
    return ctx.notice(
        "This form has expired",
        "For your safety the form must come from this site and be recent. "
        "Please go back, reload the page and try again.",
        status=403,
    )


def _in_background(
    ctx: WebContext, job: Callable[[], Awaitable[None]], what: str, sid: int
) -> BackgroundTask:
    """Run an email send after the response, so every answer takes the same time."""

    async def run() -> None:
        try:
            await job()
        except Exception as exc:  # the visitor already has their answer
            event(log, f"web.{what}_failed", level=logging.ERROR, subscriber=sid, error=str(exc))

    return BackgroundTask(run)


# --- subscribe -----------------------------------------------------------------------------------


def _subscribe_form(
    request: Request, *, status: int = 200, error: str = "", email: str = "", **values: Any
) -> Response:
    ctx = context_of(request)
    return ctx.form_page(
        request,
        "subscribe.html",
        status,
        honeypot=HONEYPOT,
        topics=ctx.topics,
        chosen=set(values.get("chosen", ())),
        frequency=values.get("frequency", Frequency.DAILY),
        email=email,
        error=error,
    )


async def home(request: Request) -> Response:
    """GET /: the subscribe form."""
    return _subscribe_form(request)


async def subscribe(request: Request) -> Response:
    """POST /subscribe: ask for a confirmation email; the same answer whatever the address.

    The same answer at the same time: the address is looked up after answering, and the
    answer waits until SUBSCRIBE_ANSWER_AFTER has passed, whatever ran before it.
    """
    started = time.monotonic()
    ctx = context_of(request)
    client = request.client.host if request.client else "unknown"
    wait = ctx.limiter.hit(client)
    if wait:
        response = ctx.notice(
            "Too many requests",
            "Please wait a few minutes before trying again.",
            status=429,
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    form = await request.form()
    if not ctx.csrf.check(request, form):
        return _forbidden(ctx)
    checking = ctx.notice(
        "Check your inbox",
        "If the address can receive our emails, a confirmation link is on its way. "
        "Click it within 48 hours to start your subscription.",
    )
    if form.get(HONEYPOT):
        event(log, "web.subscribe_honeypot")
        await _answer_after(started)
        return checking
    raw_email = str(form.get("email") or "")
    chosen = [t for t in form.getlist("topic") if t in ctx.topics]
    frequency = Frequency.WEEKLY if form.get("frequency") == "weekly" else Frequency.DAILY
    try:
        address = subs.normalize_email(raw_email)  # the same work for every valid address
    except DigestError as exc:
        return _subscribe_form(
            request,
            status=400,
            error=_sentence(str(exc)),
            email=raw_email[:320],
            chosen=chosen,
            frequency=frequency,
        )
    checking.background = _subscription_job(ctx, address, chosen, frequency)
    await _answer_after(started)
    return checking


async def _answer_after(started: float) -> None:
    """Wait until SUBSCRIBE_ANSWER_AFTER seconds have passed since ``started``.

    Whatever the address, the work before the answer is the same; the floor hides what noise
    is left (caches, the background work of earlier requests) under one fixed answer time.
    """
    await asyncio.sleep(max(0.0, SUBSCRIBE_ANSWER_AFTER - (time.monotonic() - started)))


def _subscription_job(
    ctx: WebContext, address: str, topics: list[str], frequency: Frequency
) -> BackgroundTask | None:
    """Look the address up, add or refresh it and email the confirmation, after answering.

    New, active, unconfirmed, unsubscribed and deleted addresses need different database work
    and only some get an email; done before the answer, that made its time tell which kind an
    address is (3.8 ms deleted, 4.9 ms active, 6.2 ms new). In a worker thread, so the event
    loop answering the next request is not held up; at most ``ctx.backlog.limit`` at once.
    """
    if not ctx.backlog.enter():
        event(log, "web.subscribe_backlog_full", level=logging.WARNING, limit=ctx.backlog.limit)
        return None

    def prepare() -> Message | None:
        subscriber = subs.request_subscription(
            ctx.store, ctx.settings.secret_key, address, topics=topics, frequency=frequency
        )
        if subscriber is None or ctx.confirmations.hit(str(subscriber.id)):
            return None
        return subs.confirmation_for(ctx.store, subscriber, ctx.renderer)

    async def run() -> None:
        try:
            message = await run_in_threadpool(prepare)
            if message is not None:
                await ctx.transport.send(message)
                event(log, "web.confirmation_sent")
        except Exception as exc:  # the visitor already has their answer
            event(log, "web.subscribe_failed", level=logging.ERROR, error=str(exc))
        finally:
            ctx.backlog.leave()

    return BackgroundTask(run)


def _sentence(text: str) -> str:
    """``not valid: x`` -> ``Not valid: x.``"""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- confirm -------------------------------------------------------------------------------------


def _verify(
    ctx: WebContext, token: str, purpose: Purpose
) -> tuple[TokenData | None, Response | None]:
    """(what the token says, None) for a good token, else (None, the error page)."""
    try:
        data = ctx.signer.verify(token, purpose)
    except TokenExpired:
        return None, ctx.notice(
            "This link has expired",
            "Confirmation links work for 48 hours. Subscribe again to get a new one.",
            status=410,
            link=("/", "Subscribe again"),
        )
    except TokenError:
        return None, ctx.notice(
            "This link is not valid",
            "Please use the complete link from your email.",
            status=400,
        )
    return data, None


def _already_used(ctx: WebContext) -> Response:
    return ctx.notice(
        "This link was already used",
        "Each confirmation link works once. If you already confirmed, you are subscribed; "
        "otherwise subscribe again for a new link.",
        status=410,
        link=("/", "Subscribe"),
    )


async def confirm_page(request: Request) -> Response:
    """GET /confirm/{token}: a page with a confirm button; changes nothing.

    Mail scanners fetch every link in an email; were the GET to confirm, a scanner would
    defeat double opt-in. Only the person pressing the button (a POST from this page) confirms.
    """
    ctx = context_of(request)
    data, error = _verify(ctx, request.path_params["token"], Purpose.CONFIRM)
    if error is not None:
        return error
    if not ctx.store.confirmation_open(data.subscriber_id, data.nonce):
        return _already_used(ctx)
    return ctx.form_page(request, "confirm.html")


async def confirm(request: Request) -> Response:
    """POST /confirm/{token}: activate the subscription (the link works once), then welcome."""
    ctx = context_of(request)
    form = await request.form()
    if not ctx.csrf.check(request, form):
        return _forbidden(ctx)
    data, error = _verify(ctx, request.path_params["token"], Purpose.CONFIRM)
    if error is not None:
        return error
    sid = data.subscriber_id
    subscriber = ctx.store.confirm_subscriber(sid, data.nonce)
    if subscriber is None:
        return _already_used(ctx)
    event(log, "web.confirmed", subscriber=sid)
    response = ctx.page(
        "welcome.html",
        subscriber=subscriber,
        preferences=f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, sid)}",
    )

    async def send() -> None:
        await ctx.transport.send(ctx.renderer.welcome(subscriber))

    response.background = _in_background(ctx, send, "welcome", sid)
    return response


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
    data, error = _verify(ctx, request.path_params["token"], purpose)
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
        return _forbidden(ctx)
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
        except DigestError as exc:
            return _preferences_page(request, subscriber, status=400, error=str(exc))
        ctx.store.update_preferences(
            sid,
            topics=[t for t in form.getlist("topic") if t in ctx.topics],
            keywords=subs.split_list(str(form.get("keywords") or "").replace(",", ";"))[:20],
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
    data, error = _verify(ctx, request.path_params["token"], Purpose.UNSUBSCRIBE)
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
    data, error = _verify(ctx, request.path_params["token"], Purpose.UNSUBSCRIBE)
    if error is not None:
        return error
    subscriber = ctx.store.get_subscriber(data.subscriber_id)
    preferences_link = None
    if subscriber is not None:
        if ctx.store.unsubscribe(subscriber.id):
            event(log, "web.unsubscribed", subscriber=subscriber.id)
        preferences_link = f"/preferences/{ctx.signer.make(Purpose.PREFERENCES, subscriber.id)}"
    return ctx.page("unsubscribed.html", preferences=preferences_link)
