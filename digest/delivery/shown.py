"""Before a claimed batch is sent: record what each email shows, and find its follow-ups.

Two statements for the whole batch, not one per paper: the follow-ups chosen are marked as
told in this edition (so a later edition never repeats them, and a resend of this one shows
the same), and every paper each email holds is noted with its signals as shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.delivery.contents import Contents
from digest.models import Paper, Subscriber, SubscriberStatus
from digest.store import Store, utcnow
from digest.themes.followups import FOLLOWUP_WINDOW, Followup, choose_followups

__all__ = ["prepare_batch"]


def prepare_batch(
    store: Store, contents: Contents, subscribers: Sequence[Subscriber], now: datetime | None = None
) -> dict[int, tuple[Followup, ...]]:
    """Note what these subscribers' emails show; give ``contents`` their follow-ups.

    Returns the follow-ups by subscriber id (only those who get some).
    """
    now = now or utcnow()
    edition = contents.edition
    if edition.id is None:
        return {}
    shown: dict[int, list[Paper]] = {}
    wanting: list[int] = []
    for sub in subscribers:
        if sub.status is not SubscriberStatus.ACTIVE or sub.id is None:
            continue
        selection = contents.selection(sub)
        if not contents.sends(selection):
            continue
        shown[sub.id] = [p.paper for t in selection.themes for p in t.papers]
        if sub.followups:
            wanting.append(sub.id)
    own = {p.arxiv_id for p in edition.papers}  # the email shows these anyway
    candidates = store.followup_candidates(wanting, edition.id, since=now - FOLLOWUP_WINDOW)
    chosen = {sid: choose_followups(found, exclude=own) for sid, found in candidates.items()}
    chosen = {sid: told for sid, told in chosen.items() if told}
    store.mark_followed_up(
        edition.id, [(sid, f.paper.arxiv_id) for sid, told in chosen.items() for f in told]
    )
    store.record_shown(edition.id, shown, now)
    contents.followups = chosen
    return chosen
