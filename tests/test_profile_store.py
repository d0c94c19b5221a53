"""The reader's profile is stored, read back with every subscriber, and goes with a delete."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from digest.models import DeliveryStatus, Edition, Frequency, Subscriber, SubscriberStatus


def test_profile_round_trips_through_add_update_and_delivery_claims(any_store):
    sub = any_store.add_subscriber(
        Subscriber(
            "ada@example.org",
            likes=("2411.00001", "hep-th/9901001"),
            dislikes=("2411.00002",),
            blend=0.7,
            follow_authors=("Kaiming He",),
            follow_orgs=("Meta AI",),
            timezone="Asia/Tokyo",
            send_hour=7,
            empty_days="roll",
            followups=False,
        )
    )
    got = any_store.get_subscriber(sub.id)
    assert got == dataclasses.replace(sub)  # what was added is what is read
    assert got.likes == ("2411.00001", "hep-th/9901001")
    any_store.update_preferences(sub.id, blend=None, follow_orgs=(), send_hour=8, followups=True)
    got = any_store.find_subscriber("ada@example.org")
    assert (got.blend, got.follow_orgs, got.send_hour, got.followups) == (None, (), 8, True)
    assert got.follow_authors == ("Kaiming He",)
    with pytest.raises(TypeError, match="not a profile field: likes"):
        any_store.update_preferences(sub.id, likes=("x",))
    active = list(any_store.iter_active_subscribers())
    assert active[0].likes == ("2411.00001", "hep-th/9901001")


def test_ratings_are_idempotent_reversible_and_erased_with_the_subscriber(any_store):
    ada = any_store.add_subscriber(Subscriber("ada@example.org"))
    bob = any_store.add_subscriber(Subscriber("bob@example.org", status=SubscriberStatus.ACTIVE))
    any_store.set_rating(ada.id, "2411.00001", 1)
    any_store.set_rating(ada.id, "2411.00001", 1)  # a second click changes nothing
    any_store.set_rating(ada.id, "2411.00002", 1)
    any_store.set_rating(ada.id, "2411.00002", -1)  # reversed
    any_store.set_rating(bob.id, "2411.00003", 1)
    ada_now = any_store.get_subscriber(ada.id)
    assert (ada_now.likes, ada_now.dislikes) == (("2411.00001",), ("2411.00002",))
    assert any_store.get_subscriber(bob.id).likes == ("2411.00003",)  # never shared
    any_store.set_rating(ada.id, "2411.00001", None)  # undo
    assert any_store.rating(ada.id, "2411.00001") is None
    any_store.delete_subscriber(ada.id, "hash-of-ada")
    with any_store.engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT count(*) FROM ratings WHERE subscriber_id = :i"), {"i": ada.id}
        )
        assert left.scalar() == 0


def _saved_edition(store) -> Edition:
    """An empty stored edition, for ledger rows to belong to."""
    return store.save_edition(
        Edition("daily-2026-11-26", Frequency.DAILY, dt.date(2026, 11, 26), ())
    )


def test_a_claimed_batch_carries_each_reader_as_stored(any_store):
    """The send loop reads its readers through claims (list columns decoded once per batch)."""
    edition = _saved_edition(any_store)
    shared = ("Language models", "Computer vision")
    readers = [
        Subscriber(f"r{i}@example.org", status=SubscriberStatus.ACTIVE, topics=shared,
                   keywords=('say "hi"', "naïve\\path") if i % 2 else (),
                   follow_authors=("Renée O'Brien",) if i == 3 else (), follow_orgs=("Meta AI",))
        for i in range(6)
    ]  # fmt: skip
    added = [any_store.add_subscriber(r) for r in readers]
    any_store.set_rating(added[1].id, "2411.00001", 1)
    any_store.set_rating(added[1].id, "hep-th/9901001", -1)
    any_store.queue_deliveries(edition.id, [s.id for s in reversed(added)])
    claims = any_store.claim_deliveries(edition.id, "me", 10)
    assert [c.delivery_id for c in claims] == sorted(c.delivery_id for c in claims)
    got = {c.subscriber.id: c.subscriber for c in claims}
    assert got == {s.id: any_store.get_subscriber(s.id) for s in added}
    assert got[added[3].id].keywords == ('say "hi"', "naïve\\path")
    assert got[added[1].id].dislikes == ("hep-th/9901001",)


def test_a_claim_after_a_row_takes_only_the_open_rows_past_it(any_store):
    """The send loop claims past its last batch, so the scan skips the rows sent already."""
    edition = _saved_edition(any_store)
    added = [any_store.add_subscriber(Subscriber(f"r{i}@example.org",
                                                 status=SubscriberStatus.ACTIVE))
             for i in range(6)]  # fmt: skip
    any_store.queue_deliveries(edition.id, [s.id for s in added])
    ids = sorted(d.id for d in any_store.deliveries(edition.id))
    any_store.mark_delivery(ids[4], DeliveryStatus.SENT)
    later = any_store.claim_deliveries(edition.id, "me", 10, after=ids[1])
    assert [c.delivery_id for c in later] == [ids[2], ids[3], ids[5]]
    everything = any_store.claim_deliveries(edition.id, "me", 10)  # rows below come too
    assert [c.delivery_id for c in everything] == [ids[0], ids[1], ids[2], ids[3], ids[5]]
