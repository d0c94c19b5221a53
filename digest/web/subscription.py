"""Unsubscribing in `digest web`: the page behind the email's link, and RFC 8058 one-click.

Links in emails carry signed, purpose-bound tokens (digest.tokens); the one-click unsubscribe
POST needs neither cookie nor CSRF token. Subscribing and confirming are in digest.web.optin,
the preferences page in digest.web.preferences, feedback links in digest.web.feedback. The
handlers are mounted by `digest.web.create_app`.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from digest.logs import event
from digest.models import SubscriberStatus
from digest.tokens import Purpose
from digest.web.context import context_of

__all__ = ["unsubscribe", "unsubscribe_page"]

log = logging.getLogger(__name__)

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
