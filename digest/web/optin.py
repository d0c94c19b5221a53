"""Double opt-in pages of `digest web`: the subscribe form, its answer, the confirm button.

Subscribe answers every address alike and at the same time (the lookup and the confirmation
email run after answering); a confirmation link shows a button and changes nothing until the
person presses it, since mail scanners fetch every link in an email.
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
from starlette.responses import Response

from digest import subscribers as subs
from digest.errors import DigestError
from digest.logs import event
from digest.models import Frequency, Message
from digest.tokens import Purpose
from digest.web.context import WebContext, context_of, sentence
from digest.web.guard import HONEYPOT, SUBSCRIBE_ANSWER_AFTER

__all__ = ["confirm", "confirm_page", "home", "subscribe"]

log = logging.getLogger(__name__)


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
        return ctx.forbidden()
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
    requested = [str(t) for t in form.getlist("topic")]
    chosen = [t for t in requested if t in ctx.topics]
    frequency = Frequency.WEEKLY if form.get("frequency") == "weekly" else Frequency.DAILY
    try:
        subs.resolve_topics(requested, ctx.topics)  # only the form's own topics
        address = subs.normalize_email(raw_email)  # the same work for every valid address
    except DigestError as exc:
        return _subscribe_form(
            request,
            status=400,
            error=sentence(str(exc)),
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
    # Until the time has really passed: on uvloop (uvicorn's loop where it is installed) a
    # timer counts whole milliseconds and can fire up to one early.
    deadline = started + SUBSCRIBE_ANSWER_AFTER
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(left)


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


# --- confirm -------------------------------------------------------------------------------------


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
    data, error = ctx.verify(request.path_params["token"], Purpose.CONFIRM)
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
        return ctx.forbidden()
    data, error = ctx.verify(request.path_params["token"], Purpose.CONFIRM)
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
