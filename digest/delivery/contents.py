"""Each subscriber's email for one edition, rendered once per distinct selection.

Subscribers with equal ``rank.selection_key`` get equal selections, so the expensive part
(``Renderer.prepare_digest``) runs once per key and only the cheap per-subscriber part
(``PreparedMessage.for_subscriber``) runs per row. Used by the send loop and its dry run.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from digest.config import EmptyEdition, Settings
from digest.delivery.transports import EDITION_HEADER
from digest.mail.render import Renderer
from digest.models import Edition, Message, Subscriber
from digest.themes import rank
from digest.themes.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:  # "for me" loads NumPy and scikit-learn: only once an edition is selected
    from digest.themes.foryou import Lookup

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
        lookup: Lookup | None = None,
    ) -> None:
        renderer = renderer or Renderer(settings)
        taxonomy = taxonomy or load_taxonomy(settings.taxonomy_file)
        self.edition, self.settings = edition, settings
        self.renderer, self.taxonomy = renderer, taxonomy
        # Selections must not depend on when (or by which worker) the row is sent.
        self.now = edition.created_at or datetime.combine(edition.date, dtime(), tzinfo=UTC)
        # "For me": the edition scored once; ``lookup`` (the store) finds the papers readers rated.
        self.scorer = rank.for_me(edition, self.now, lookup)
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self.renders = 0

    def prepare(self, subscribers: Sequence[Subscriber]) -> None:
        """Score a batch of subscribers' likes at once (one matrix product) before their emails."""
        self.scorer.prepare(subscribers)

    def key(self, subscriber: Subscriber) -> Hashable:
        """Which content ``subscriber`` gets: equal keys, equal emails but for their links."""
        return rank.selection_key(subscriber)

    def message(self, subscriber: Subscriber) -> Message | None:
        """The subscriber's email, or None when their selection is empty and empties are skipped."""
        key = self.key(subscriber)
        if key in self._cache:
            self._cache.move_to_end(key)
            prepared = self._cache[key]
        else:
            selection = rank.select(
                self.edition,
                subscriber,
                taxonomy=self.taxonomy,
                default_max=self.settings.max_papers,
                now=self.now,
                scorer=self.scorer,
            )
            prepared = None
            if selection.count or self.settings.empty_edition is EmptyEdition.SEND:
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
