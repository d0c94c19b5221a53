"""A reader's profile as an admin sets it: likes of stored papers, blend, follows, own hour.

``profile_fields`` turns what was asked (a ``ProfileChange``) into the Subscriber fields to
store, checked by digest.subscribers.profile; ``change_profile`` stores them for a reader
already on the list. The CLI's `subscribers add` and `subscribers set` call these.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.logs import event
from digest.models import Subscriber
from digest.subscribers.lifecycle import check_max_papers
from digest.subscribers.profile import (
    ProfileError,
    check_follows,
    parse_arxiv_id,
    parse_blend,
    parse_empty_days,
    parse_hour,
    parse_timezone,
)

if TYPE_CHECKING:
    from digest.store import Store

__all__ = [
    "ProfileChange",
    "change_profile",
    "describe_profile",
    "profile_fields",
    "stored_paper_ids",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileChange:
    """What to change, as typed; ``None`` leaves a field alone and ``""`` resets it."""

    like: tuple[str, ...] = ()
    dislike: tuple[str, ...] = ()
    unrate: tuple[str, ...] = ()  # forget a like or a dislike
    max_papers: int | None = None  # 0: back to the site-wide default
    blend: str | None = None
    follow_authors: tuple[str, ...] = ()
    follow_orgs: tuple[str, ...] = ()
    unfollow_authors: tuple[str, ...] = ()
    unfollow_orgs: tuple[str, ...] = ()
    timezone: str | None = None
    hour: str | None = None
    empty_days: str | None = None
    followups: bool | None = None


def stored_paper_ids(store: Store, raw: Iterable[str]) -> tuple[str, ...]:
    """Version-less ids of arXiv ids or URLs, each of a stored paper; ProfileError otherwise."""
    ids = tuple(dict.fromkeys(parse_arxiv_id(r) for r in raw))
    if not ids:
        return ()
    found = store.get_papers(ids)
    missing = [a for a in ids if a not in found]
    if missing:
        raise ProfileError(
            f"{missing[0]} is not a stored paper (only collected papers can be rated)"
        )
    return ids


def _without(kept: Iterable[str], dropped: Iterable[str]) -> tuple[str, ...]:
    gone = {" ".join(d.split()).casefold() for d in dropped}
    return tuple(k for k in kept if k.casefold() not in gone)


def profile_fields(store: Store, current: Subscriber, change: ProfileChange) -> dict:
    """The Subscriber fields after ``change`` (all of the profile, checked); nothing stored yet."""
    like = stored_paper_ids(store, change.like)
    dislike = stored_paper_ids(store, change.dislike)
    both = set(like) & set(dislike)
    if both:
        raise ProfileError(f"{sorted(both)[0]} cannot be both liked and disliked")
    unrate = {parse_arxiv_id(r) for r in change.unrate}
    likes = [a for a in current.likes if a not in unrate | set(dislike)]
    dislikes = [a for a in current.dislikes if a not in unrate | set(like)]
    fields = {
        "likes": tuple(dict.fromkeys([*likes, *like])),
        "dislikes": tuple(dict.fromkeys([*dislikes, *dislike])),
        "follow_authors": check_follows(
            _without([*current.follow_authors, *change.follow_authors], change.unfollow_authors),
            "author",
        ),
        "follow_orgs": check_follows(
            _without([*current.follow_orgs, *change.follow_orgs], change.unfollow_orgs),
            "organisation",
        ),
        "blend": current.blend if change.blend is None else parse_blend(change.blend),
        "timezone": current.timezone
        if change.timezone is None
        else parse_timezone(change.timezone),
        "send_hour": current.send_hour if change.hour is None else parse_hour(change.hour),
        "empty_days": (
            current.empty_days if change.empty_days is None else parse_empty_days(change.empty_days)
        ),
        "followups": current.followups if change.followups is None else change.followups,
        "max_papers": current.max_papers,
    }
    if change.max_papers is not None:
        if change.max_papers < 0:
            raise ProfileError(
                f"max papers must be 0 (the default) or more, not {change.max_papers}"
            )
        fields["max_papers"] = check_max_papers(change.max_papers or None)
    return fields


def change_profile(store: Store, email: str, change: ProfileChange) -> Subscriber:
    """Apply ``change`` to the subscriber with this address; returns them as now stored."""
    subscriber = store.find_subscriber(email)
    if subscriber is None or subscriber.id is None:
        raise DigestError(f"{email} is not on the list")
    fields = profile_fields(store, subscriber, change)
    likes, dislikes = fields.pop("likes"), fields.pop("dislikes")
    max_papers = fields.pop("max_papers")
    for arxiv_id in {*subscriber.likes, *subscriber.dislikes} - {*likes, *dislikes}:
        store.set_rating(subscriber.id, arxiv_id, None)
    for arxiv_id in likes:
        store.set_rating(subscriber.id, arxiv_id, 1)
    for arxiv_id in dislikes:
        store.set_rating(subscriber.id, arxiv_id, -1)
    updated = store.update_preferences(subscriber.id, max_papers=max_papers, **fields)
    # The count only: which papers a reader likes is theirs, not the log's.
    event(
        log,
        "subscriber.profile_changed",
        subscriber=subscriber.id,
        ratings=len(likes) + len(dislikes),
    )
    return updated or dataclasses.replace(subscriber, **fields)


def describe_profile(s: Subscriber) -> str:
    """The profile in one line for the admin: "2 likes, 1 dislike, blend default, ..."."""
    parts = [
        f"{len(s.likes)} like{'' if len(s.likes) == 1 else 's'}",
        f"{len(s.dislikes)} dislike{'' if len(s.dislikes) == 1 else 's'}",
        "blend default" if s.blend is None else f"blend {s.blend:g}",
        f"max papers {s.max_papers or 'default'}",
        "follows " + (", ".join([*s.follow_authors, *s.follow_orgs]) or "nobody"),
        f"hour {'default' if s.send_hour is None else s.send_hour} "
        f"in {s.timezone or 'the default time zone'}",
        f"empty days {s.empty_days}",
        f"follow-ups {'on' if s.followups else 'off'}",
    ]
    return "; ".join(parts)
