"""The only package that speaks SQL. Everything else sees the dataclasses of digest.models.

``Store`` is composed of one mixin per area so each file stays small and has one job.
"""

from digest.store.archive import (
    ArchiveStore,
    EditionOverview,
    SearchHit,
    SearchResult,
    ThemeOverview,
)
from digest.store.base import AlreadyExists, StoreBase, StoreError, utcnow
from digest.store.deliveries import DeliveryStore
from digest.store.editions import EditionStore
from digest.store.failures import FailureGroup, FailureStore
from digest.store.hours import HourGroup, HourStore
from digest.store.leases import LeaseStore, holder_is_gone, new_holder
from digest.store.papers import PaperStore
from digest.store.ratings import RatingStore
from digest.store.recovery import RecoveryStore
from digest.store.runs import RunStore
from digest.store.shown import Seen, ShownEmail, ShownStore
from digest.store.subscribers import SubscriberStore

__all__ = [
    "AlreadyExists",
    "EditionOverview",
    "FailureGroup",
    "HourGroup",
    "SearchHit",
    "SearchResult",
    "Seen",
    "ShownEmail",
    "Store",
    "StoreError",
    "ThemeOverview",
    "holder_is_gone",
    "new_holder",
    "utcnow",
]


class Store(
    PaperStore,
    EditionStore,
    ArchiveStore,
    SubscriberStore,
    RatingStore,
    ShownStore,
    DeliveryStore,
    FailureStore,
    HourStore,
    RecoveryStore,
    RunStore,
    LeaseStore,
    StoreBase,
):
    """The database of digest: papers, editions, subscribers, what they were shown, deliveries, runs, leases."""
