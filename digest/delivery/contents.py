"""Each subscriber's email for one edition: their selection, assembled from pre-rendered pieces.

Selection reads the edition's paper x topic matrix (digest.themes.matching), and the email is
joined from blocks rendered once per edition (digest.mail.assembly), so the cost per email
does not grow with how many selections differ. The first emails of a run are also rendered
whole, per selection, and compared: a template override that the assembly would get wrong
(or that lacks the blocks) is then rendered per distinct selection instead, as before, with
an LRU of prepared digests (``Renderer.prepare_digest``). Used by the send loop and its dry run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from digest.config import EmptyEdition, Settings
from digest.delivery.transports import EDITION_HEADER
from digest.logs import event
from digest.mail.assembly import Assembly, assembly_for, same_parts
from digest.mail.followups import followup_views
from digest.mail.render import Renderer
from digest.models import REMAINDER_LABEL, Edition, Message, Selection, Subscriber, Theme
from digest.store import Store
from digest.themes import rank
from digest.themes.followups import Followup
from digest.themes.matching import EditionIndex
from digest.themes.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:  # "for me" loads NumPy and scikit-learn: only once an edition is selected
    from digest.themes.foryou import Lookup

log = logging.getLogger(__name__)
CHECKED = 3  # emails per run compared with a whole render before the assembly is trusted

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
        lookup: Lookup | None = None,
        store: Store | None = None,
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
        # Selections by key: the follow-ups step and the email both ask for the same one.
        self._selections: OrderedDict[Hashable, Selection] = OrderedDict()
        self._prepared: dict[Hashable, Selection] = {}  # the last two prepared batches', by key
        self._batch: dict[Hashable, Selection] = {}  # the last prepared batch's
        self._size = size
        self.renders = 0
        self._index: EditionIndex | None = None
        self._assembly: Assembly | None | bool = False  # False: not made yet
        self.checked = 0
        self.store = store  # to find the editions a "roll" subscriber was given nothing of
        # followups: subscriber id -> their "Since you last saw it" papers, set per claimed
        # batch by digest.delivery.shown (empty for a dry run: it stores nothing).
        self.followups: dict[int, tuple[Followup, ...]] = {}

    @property
    def index(self) -> EditionIndex:
        """The edition's topic and keyword matches, worked out on first use."""
        if self._index is None:
            self._index = EditionIndex(self.edition, self.taxonomy, self.now)
        return self._index

    def assembly(self) -> Assembly | None:
        """The edition's pre-rendered pieces; None when the templates need whole renders."""
        if self._assembly is False:
            self._assembly = assembly_for(self.renderer, self.edition)
            if self._assembly is None:
                event(log, "send.rendered_per_selection", level=logging.WARNING,
                      reason="digest templates without the blocks the assembly needs")  # fmt: skip
        return self._assembly  # type: ignore[return-value]

    def prepare(self, subscribers: Sequence[Subscriber]) -> None:
        """Choose a batch of subscribers' papers at once (one matrix product, one top-k)."""
        from digest.themes.batches import select_batch  # NumPy: only once an edition is sent

        chosen = select_batch(
            self.edition, subscribers, index=self.index, scorer=self.scorer,
            default_max=self.settings.max_papers,
        )  # fmt: skip
        # The batch before stays too: the send loop prepares a batch while that one is built.
        self._prepared, self._batch = {**self._batch, **chosen}, chosen

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

    def sends(self, selection: Selection) -> bool:
        """True when a selection makes an email (an empty one only with DIGEST_EMPTY_EDITION=send)."""
        return bool(selection.count) or self.settings.empty_edition is EmptyEdition.SEND

    def selection(self, subscriber: Subscriber, rolled: list[Edition] | None = None) -> Selection:
        """What ``subscriber`` gets of the edition (and of ``rolled``, their empty days')."""
        if rolled:  # a rare, merged edition: selected on its own, without the edition's index
            return rank.select(
                with_rolled(self.edition, rolled), subscriber, taxonomy=self.taxonomy,
                default_max=self.settings.max_papers, now=self.now,
            )  # fmt: skip
        key = rank.selection_key(subscriber)
        if key in self._prepared:  # chosen with its claimed batch
            return self._prepared[key]
        if key in self._selections:
            self._selections.move_to_end(key)
            return self._selections[key]
        selection = self._selections[key] = rank.select(
            self.edition, subscriber, taxonomy=self.taxonomy,
            default_max=self.settings.max_papers, now=self.now, index=self.index,
            scorer=self.scorer,
        )  # fmt: skip
        if len(self._selections) > self._size:
            self._selections.popitem(last=False)
        return selection

    def message(self, subscriber: Subscriber, extra: Any = None) -> Message | None:
        """The subscriber's email, or None when their selection is empty and empties are skipped.

        ``extra``: what the templates' ``extra`` block shows this subscriber (the hook for a
        per-subscriber section such as papers from their earlier emails); None: nothing.
        With empty_days = "roll" an empty selection is never sent (not even the "nothing new"
        email of DIGEST_EMPTY_EDITION=send), and the next email also selects from the papers
        of the editions that gave them nothing since their last email.
        """
        told = self.followups.get(subscriber.id or 0, ())
        if extra is None and told:  # "Since you last saw it", chosen for this claimed batch
            extra = followup_views(told)
        rolled = self._rolled(subscriber)
        selection = self.selection(subscriber, rolled)
        if not selection.count and subscriber.empty_days == "roll":
            return None
        message = None
        # Rolled papers have no pre-rendered pieces: such an email is rendered whole.
        assembly = self.assembly() if selection.count and not rolled else None
        if assembly is not None:
            message = assembly.message(subscriber, selection, extra)
            if message is not None and self.checked < CHECKED:
                message = self._checked(subscriber, selection, message, extra)
            if message is not None:  # its headers are its own: no copy of the message needed
                message.headers.setdefault(EDITION_HEADER, self.edition.key)
        if message is None:
            message = self._whole(subscriber, selection, extra, rolled)
            if message is None:
                return None
        if EDITION_HEADER not in message.headers:
            headers = {**message.headers, EDITION_HEADER: self.edition.key}
            message = dataclasses.replace(message, headers=headers)
        return message

    def _checked(
        self, subscriber: Subscriber, selection: Selection, message: Message, extra: Any
    ) -> Message:
        """``message`` if a whole render shows the same; else the whole render, from now on."""
        self.checked += 1
        whole = self._whole(subscriber, selection, extra, [])
        if whole is not None and same_parts(message, whole):
            return message
        event(log, "send.rendered_per_selection", level=logging.WARNING,
              reason="the assembled email differs from the whole render")  # fmt: skip
        self._assembly = None
        return whole  # type: ignore[return-value]

    def _whole(
        self, subscriber: Subscriber, selection: Selection, extra: Any, rolled: list[Edition]
    ) -> Message | None:
        """Render the selection whole (once per distinct selection key, in a small LRU)."""
        key = self.key(subscriber, rolled) if selection.count else ("empty", selection.omitted)
        if extra is not None:  # the subscriber's own section: nothing to share
            return self.renderer.prepare_digest(
                self.edition, selection, extra=extra
            ).for_subscriber(subscriber)
        if key in self._cache:
            self._cache.move_to_end(key)
            prepared = self._cache[key]
        else:
            prepared = None
            send_empty = self.settings.empty_edition is EmptyEdition.SEND
            send_empty = send_empty and subscriber.empty_days != "roll"
            if selection.count or send_empty:
                prepared = self.renderer.prepare_digest(self.edition, selection)
                self.renders += 1
            self._cache[key] = prepared
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        if prepared is None:
            return None
        return prepared.for_subscriber(subscriber)
