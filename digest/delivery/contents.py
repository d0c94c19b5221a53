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
from digest.models import Edition, Message, Selection, Subscriber
from digest.themes import rank
from digest.themes.followups import Followup
from digest.themes.taxonomy import Taxonomy, load_taxonomy

__all__ = ["Contents"]


class Contents:
    """Renders once per distinct selection; a small LRU keeps memory flat at any list size."""

    def __init__(
        self,
        edition: Edition,
        settings: Settings,
        renderer: Renderer | None = None,
        taxonomy: Taxonomy | None = None,
        size: int = 256,
    ) -> None:
        renderer = renderer or Renderer(settings)
        taxonomy = taxonomy or load_taxonomy(settings.taxonomy_file)
        self.edition, self.settings = edition, settings
        self.renderer, self.taxonomy = renderer, taxonomy
        # Selections must not depend on when (or by which worker) the row is sent.
        self.now = edition.created_at or datetime.combine(edition.date, dtime(), tzinfo=UTC)
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._selections: OrderedDict[Hashable, Selection] = OrderedDict()
        self._size = size
        self.renders = 0
        # followups: subscriber id -> their "Since you last saw it" papers, set per claimed
        # batch by digest.delivery.shown (empty for a dry run: it stores nothing).
        self.followups: dict[int, tuple[Followup, ...]] = {}

    def key(self, subscriber: Subscriber) -> Hashable:
        """Which content ``subscriber`` gets: equal keys, equal emails but for their links."""
        return rank.selection_key(subscriber), self.followups.get(subscriber.id or 0, ())

    def selection(self, subscriber: Subscriber) -> Selection:
        """The papers of the edition ``subscriber`` gets (computed once per selection key)."""
        key = rank.selection_key(subscriber)
        if key in self._selections:
            self._selections.move_to_end(key)
            return self._selections[key]
        selection = self._selections[key] = rank.select(
            self.edition,
            subscriber,
            taxonomy=self.taxonomy,
            default_max=self.settings.max_papers,
            now=self.now,
        )
        if len(self._selections) > self._size:
            self._selections.popitem(last=False)
        return selection

    def sends(self, selection: Selection) -> bool:
        """True when a selection makes an email (an empty one only with DIGEST_EMPTY_EDITION=send)."""
        return bool(selection.count) or self.settings.empty_edition is EmptyEdition.SEND

    def message(self, subscriber: Subscriber) -> Message | None:
        """The subscriber's email, or None when their selection is empty and empties are skipped."""
        key = self.key(subscriber)
        if key in self._cache:
            self._cache.move_to_end(key)
            prepared = self._cache[key]
        else:
            selection = self.selection(subscriber)
            prepared = None
            if self.sends(selection):
                followups = key[1]  # type: ignore[index]
                prepared = self.renderer.prepare_digest(
                    self.edition, selection, followups=followups
                )
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
