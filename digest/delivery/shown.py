"""Before a claimed batch is sent: record what each email shows, and find its follow-ups.

Per send run, once: the edition's papers are snapshotted as its emails show them, and the
papers of the last 30 days' editions with news since their own snapshot are read (one query
for every reader). Per batch, a piece of readers at a time: their earlier emails are read and
their new ones recorded, one statement each, however many papers the emails hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.delivery.contents import Contents
from digest.delivery.work import PIECE
from digest.models import Subscriber, SubscriberStatus
from digest.store import ShownEmail, Store, utcnow
from digest.themes.followups import FOLLOWUP_WINDOW, Followup, order_followups, pick_followups

__all__ = ["ShownBatches"]


class ShownBatches:
    """What a send run's emails show, batch by batch, and their "Since you last saw it"."""

    def __init__(self, store: Store, contents: Contents, now: datetime | None = None) -> None:
        self.store, self.contents = store, contents
        self.now = now or utcnow()
        self.since = self.now - FOLLOWUP_WINDOW
        self._news: list[Followup] | None = None
        self._before: dict[int, tuple[Followup, ...]] = {}  # the last batch's follow-ups

    def news(self) -> list[Followup]:
        """Every paper of the window's editions with news since, strongest first; read once."""
        if self._news is None:
            edition = self.contents.edition
            self.store.snapshot_edition(
                edition.id,
                edition.papers,
                self.now,
                forget_before=self.since,  # type: ignore[arg-type]
            )
            self._news = order_followups(self.store.papers_with_news(self.since, but=edition.id))
        return self._news

    def prepare(self, subscribers: Sequence[Subscriber]) -> dict[int, tuple[Followup, ...]]:
        """Record these subscribers' emails; give ``contents`` (and return) their follow-ups."""
        edition = self.contents.edition
        if edition.id is None:
            return {}
        news = self.news()
        mine = self.store.shown_emails([s.id for s in subscribers if s.id], self.since)
        record, chosen = self._choose(subscribers, mine, news)
        self.store.record_emails(edition.id, record, self.now, forget_before=self.since)
        return self._chosen(chosen)

    async def prepare_async(
        self, subscribers: Sequence[Subscriber]
    ) -> dict[int, tuple[Followup, ...]]:
        """``prepare`` from the send loop, PIECE subscribers per awaited read and write: the
        messages on the wire go on meanwhile (``StoreBase.in_transaction``)."""
        edition = self.contents.edition
        if edition.id is None:
            return {}
        news, chosen = self.news(), {}
        forget = self.since  # older emails are deleted once, with the first piece's record
        for start in range(0, len(subscribers), PIECE):
            piece = subscribers[start : start + PIECE]
            mine = await self.store.shown_emails_async([s.id for s in piece if s.id], self.since)
            record, told = self._choose(piece, mine, news)
            await self.store.record_emails_async(edition.id, record, self.now, forget_before=forget)
            chosen.update(told)
            forget = None
        return self._chosen(chosen)

    def _chosen(self, chosen: dict[int, tuple[Followup, ...]]) -> dict[int, tuple[Followup, ...]]:
        """Give ``contents`` this batch's follow-ups, and still the batch's before: the send
        loop prepares a batch while the one before it is still being built."""
        self.contents.followups = {**self._before, **chosen}
        self._before = chosen
        return chosen

    def _choose(
        self,
        subscribers: Sequence[Subscriber],
        mine: dict[int, list[ShownEmail]],
        news: list[Followup],
    ) -> tuple[dict[int, tuple[list[str], list[str]]], dict[int, tuple[Followup, ...]]]:
        """What to record of each email (subscriber id -> shown, told) and their follow-ups."""
        edition = self.contents.edition
        own = {p.arxiv_id for p in edition.papers}  # the email shows these anyway
        record: dict[int, tuple[list[str], list[str]]] = {}
        chosen: dict[int, tuple[Followup, ...]] = {}
        for sub in subscribers:
            if sub.status is not SubscriberStatus.ACTIVE or sub.id is None:
                continue
            selection = self.contents.selection(sub)
            if not self.contents.sends(selection):
                continue
            emails = mine.get(sub.id, [])
            resent = next((e for e in emails if e.edition_id == edition.id), None)
            told: tuple[Followup, ...] = ()
            if resent is not None:  # a resend of this edition: the very same follow-ups
                told = _followups(emails, news, own, only=resent.told)
            elif sub.followups and emails:  # no earlier email: nothing to follow up
                told = _followups(emails, news, own)
            if told:
                chosen[sub.id] = told
            if resent is None:
                shown = [p.paper.arxiv_id for t in selection.themes for p in t.papers]
                record[sub.id] = (shown, [f.paper.arxiv_id for f in told])
        return record, chosen


def _followups(
    emails: list[ShownEmail],
    news: list[Followup],
    own: set[str],
    only: frozenset[str] | None = None,
) -> tuple[Followup, ...]:
    """One reader's follow-ups: papers their earlier emails held with news, never told before.

    A paper is compared with the snapshot of the edition whose email showed it. ``only``:
    the arXiv ids a first send of this edition told (a resend tells the same).
    """
    held = {email.edition_id: email.papers for email in emails}
    told_before = frozenset().union(*(email.told for email in emails))

    def wanted(f: Followup) -> bool:
        arxiv_id = f.paper.arxiv_id
        if arxiv_id not in held.get(f.seen.edition_id, ()):
            return False
        return arxiv_id in only if only is not None else arxiv_id not in told_before

    return pick_followups(news, wanted, exclude=own)
