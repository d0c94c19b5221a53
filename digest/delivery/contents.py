"""Each subscriber's email for one edition, rendered once per distinct selection.

Subscribers with equal ``rank.selection_key`` get equal selections, so the expensive part
(``Renderer.prepare_digest``) runs once per key and only the cheap per-subscriber part
(``PreparedMessage.for_subscriber``) runs per row. Used by the send loop and its dry run.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from digest.config import EmptyEdition, Settings
from digest.delivery.transports import EDITION_HEADER
from digest.mail.render import Renderer
from digest.models import REMAINDER_LABEL, Edition, Message, Subscriber, Theme
from digest.store import Store
from digest.themes import rank
from digest.themes.taxonomy import Taxonomy, load_taxonomy

__all__ = ["NOTHING_FOR_THEM", "Contents", "with_rolled"]

# The ledger's reason for a row that gave its subscriber no email: their selection was empty.
# A subscriber with empty_days = "roll" gets those editions' papers in their next email.
NOTHING_FOR_THEM = "nothing for this subscriber"


def with_rolled(edition: Edition, rolled: list[Edition]) -> Edition:
    """``edition`` with the papers of ``rolled`` (older editions) added, theme by theme.

    Themes of the same label merge (newest papers first); new labels follow the edition's,
    and "Other papers" stays last. The key, date and id stay the edition's own.
    """
    merged: dict[str, list] = {t.label: list(t.papers) for t in edition.themes}
    for older in reversed(rolled):  # newest of the older editions first
        for theme in older.themes:
            merged.setdefault(theme.label, []).extend(theme.papers)
    order = [label for label in merged if label != REMAINDER_LABEL]
    if REMAINDER_LABEL in merged:
        order.append(REMAINDER_LABEL)
    themes = tuple(Theme(label, tuple(merged[label])) for label in order)
    return dataclasses.replace(edition, themes=themes)


class Contents:
    """Renders once per distinct selection; a small LRU keeps memory flat at any list size."""

    def __init__(
        self,
        edition: Edition,
        settings: Settings,
        renderer: Renderer | None = None,
        taxonomy: Taxonomy | None = None,
        size: int = 256,
        store: Store | None = None,
    ) -> None:
        renderer = renderer or Renderer(settings)
        taxonomy = taxonomy or load_taxonomy(settings.taxonomy_file)
        self.edition, self.settings = edition, settings
        self.renderer, self.taxonomy = renderer, taxonomy
        # Selections must not depend on when (or by which worker) the row is sent.
        self.now = edition.created_at or datetime.combine(edition.date, dtime(), tzinfo=UTC)
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self.renders = 0
        self.store = store  # to find the editions a "roll" subscriber was given nothing of

    def _rolled(self, subscriber: Subscriber) -> list[Edition]:
        """Editions whose papers this subscriber's email gathers too (empty_days = "roll")."""
        if subscriber.empty_days != "roll" or self.store is None or self.edition.id is None:
            return []
        return self.store.rolled_editions(subscriber.id, self.edition, NOTHING_FOR_THEM)  # type: ignore[arg-type]

    def key(self, subscriber: Subscriber, rolled: list[Edition] | None = None) -> Hashable:
        """Which content ``subscriber`` gets: equal keys, equal emails but for their links."""
        if rolled is None:
            rolled = self._rolled(subscriber)
        roll = subscriber.empty_days == "roll"
        return (rank.selection_key(subscriber), roll, tuple(e.key for e in rolled))

    def message(self, subscriber: Subscriber) -> Message | None:
        """The subscriber's email, or None when their selection is empty and empties are skipped.

        With empty_days = "roll" an empty selection is never sent (not even the "nothing new"
        email of DIGEST_EMPTY_EDITION=send), and the next email also selects from the papers
        of the editions that gave them nothing since their last email.
        """
        rolled = self._rolled(subscriber)
        key = self.key(subscriber, rolled)
        roll = subscriber.empty_days == "roll"
        if key in self._cache:
            self._cache.move_to_end(key)
            prepared = self._cache[key]
        else:
            selection = rank.select(
                with_rolled(self.edition, rolled) if rolled else self.edition,
                subscriber,
                taxonomy=self.taxonomy,
                default_max=self.settings.max_papers,
                now=self.now,
            )
            prepared = None
            send_empty = self.settings.empty_edition is EmptyEdition.SEND and not roll
            if selection.count or send_empty:
                prepared = self.renderer.prepare_digest(self.edition, selection)
                self.renders += 1
            self._cache[key] = prepared
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        if prepared is None:
            return None
        message = prepared.for_subscriber(subscriber)
        if EDITION_HEADER not in message.headers:
            headers = {**message.headers, EDITION_HEADER: self.edition.key}
            message = dataclasses.replace(message, headers=headers)
        return message
