"""The send loop on a real SQLite ledger, the real Renderer and ranking, real SMTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import sys
import time
from datetime import date, timedelta

import pytest

from digest.config import Settings
from digest.delivery import deliver, send_edition
from digest.delivery.report import DeliveryReport
from digest.delivery.throttle import Throttle
from digest.delivery.transports import MemoryTransport
from digest.errors import DigestError
from digest.mail.render import Renderer
from digest.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    Frequency,
    Paper,
    Subscriber,
    SubscriberStatus,
    Theme,
)
from digest.store import Store
from tests.smtpserver import Script, ScriptedServer


def make_edition(store: Store, key: str = "daily-2026-11-26") -> Edition:
    """A stored edition of six real-looking papers in two themes."""
    papers = [
        Paper(
            arxiv_id=f"2411.{1000 + i:05d}",
            title=f"Scaling diffusion transformers, part {i}",
            abstract="We study how diffusion transformers scale with data and compute. " * 3,
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            upvotes=40 - i,
            categories=("cs.CV",),
            sources=("hf",),
        )
        for i in range(6)
    ]
    store.upsert_papers(papers)
    edition = Edition(
        key=key,
        frequency=Frequency.DAILY,
        date=date(2026, 11, 26),
        themes=(
            Theme("Diffusion transformers", tuple(papers[:3])),
            Theme("Scaling", tuple(papers[3:])),
        ),
    )
    return store.save_edition(edition)


def add(store: Store, n: int, prefix: str = "reader", **fields) -> list[Subscriber]:
    return [
        store.add_subscriber(Subscriber(email=f"{prefix}{i}@example.com", **fields))
        for i in range(n)
    ]


def smtp_settings(settings: Settings, port: int, **more) -> Settings:
    values = dict(
        transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=5.0,
        smtp_connections=2,
    )
    values.update(more)
    return settings.model_copy(update=values)


def statuses(store: Store, edition: Edition) -> dict[int, DeliveryStatus]:
    return {d.subscriber_id: d.status for d in store.deliveries(edition.id)}


def test_each_active_subscriber_gets_one_email_and_a_second_run_sends_nothing(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    readers = add(store, 5)
    add(store, 1, "pending", status=SubscriberStatus.UNCONFIRMED)
    add(store, 1, "gone", status=SubscriberStatus.UNSUBSCRIBED)
    add(store, 1, "weekly", frequency=Frequency.WEEKLY)
    memory = MemoryTransport()
    first = send_edition(store, edition, settings, transport=memory)
    second = send_edition(store, edition, settings, transport=memory)
    assert (first.sent, second.sent) == (5, 0)
    assert sorted(m.recipient for m in memory.messages) == sorted(r.email for r in readers)
    assert first.ok and second.ok and first.contents == 1
    assert store.get_edition(edition.key).status is EditionStatus.SENT
    parsed = email.message_from_bytes(memory.messages[0].raw, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ids = {d.message_id for d in store.deliveries(edition.id)}
    assert len(ids) == 5 and None not in ids  # every ledger row names its Message-ID


def test_whole_renders_only_check_the_assembly_however_many_selections_differ(
    store: Store, settings: Settings
) -> None:
    """Ten subscribers, seven distinct selections: the template is rendered whole only for
    the first emails (compared with their assembly); the rest are joined from pieces."""
    edition = make_edition(store)
    add(store, 3, "all")
    add(store, 4, "short", max_papers=2)
    for n in (1, 3, 4):
        add(store, 1, f"n{n}-", max_papers=n)
    renders = []

    class CountingRenderer(Renderer):
        def prepare_digest(self, edition, selection, **kw):
            renders.append(selection.count)
            return super().prepare_digest(edition, selection, **kw)

    memory = MemoryTransport()
    report = send_edition(
        store, edition, settings, transport=memory, renderer=CountingRenderer(settings)
    )
    assert report.sent == 10 and len(renders) <= 3 and report.contents == len(renders)
    for n in (1, 3, 4):
        (mine,) = [m for m in memory.messages if m.recipient.startswith(f"n{n}-")]
        assert f"{n} trending paper" in mine.subject
    short = [m for m in memory.messages if m.recipient.startswith("short")]
    assert all("2 trending papers" in m.subject for m in short)
    # Each subscriber's own links, though the content was shared.
    assert len({m.headers["List-Unsubscribe"] for m in memory.messages}) == 10


def test_a_4xx_is_retried_with_backoff_and_sent_once(store: Store, settings: Settings) -> None:
    edition = make_edition(store)
    (slow, other) = add(store, 2)
    script = Script(data={slow.email: ["451 4.3.0 Try later", "421 4.7.0 Busy"]})
    with ScriptedServer(script) as server:
        report = send_edition(
            store, edition, smtp_settings(settings, server.port), retry_delay=0.01
        )
    assert report.sent == 2 and report.ok
    assert server.handler.counts == {slow.email: 1, other.email: 1}
    row = next(d for d in store.deliveries(edition.id) if d.subscriber_id == slow.id)
    assert row.status is DeliveryStatus.SENT and row.attempts == 2


def test_a_row_deferred_in_the_first_batch_is_sent_after_the_later_batches(
    store: Store, settings: Settings
) -> None:
    """Claims go on past the last batch; a row deferred before it is claimed again once due."""
    edition = make_edition(store)
    readers = add(store, 7)
    script = Script(data={readers[0].email: ["451 4.3.0 Try later"]})
    with ScriptedServer(script) as server:
        report = send_edition(
            store, edition, smtp_settings(settings, server.port), retry_delay=0.01, batch_size=2
        )
    assert report.sent == 7 and report.ok
    assert server.handler.counts == {r.email: 1 for r in readers}
    row = next(d for d in store.deliveries(edition.id) if d.subscriber_id == readers[0].id)
    assert row.status is DeliveryStatus.SENT and "451" in row.last_error  # it was deferred


def test_the_next_batch_is_claimed_while_the_batch_before_is_on_the_wire(
    any_store: Store, settings: Settings
) -> None:
    """The connections do not stand idle between batches: while the last message of the
    first batch waits for its reply, the second batch is already claimed (on PostgreSQL
    through awaited round trips); every reader still gets exactly one message."""
    import sqlalchemy as sa

    from digest.store import schema

    store, t = any_store, schema.deliveries
    edition = make_edition(store)
    readers = add(store, 6)
    claimed_then: list[set[int]] = []

    def watch(recipients: list[str]) -> None:
        if recipients == [readers[1].email]:  # the first batch's last message, not answered yet
            time.sleep(0.3)
            with store.transaction() as conn:
                query = sa.select(t.c.subscriber_id).where(t.c.claimed_by.is_not(None))
                claimed_then.append(set(conn.scalars(query)))

    with ScriptedServer(Script(watch=watch)) as server:
        report = send_edition(store, edition, smtp_settings(settings, server.port), batch_size=2)
    assert report.sent == 6 and report.ok
    assert server.handler.counts == {r.email: 1 for r in readers}
    assert {readers[2].id, readers[3].id} <= claimed_then[0]  # the second batch, claimed


def test_a_batch_is_claimed_in_pieces_and_the_loop_serves_the_connections_between_them(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claiming a batch of 1,000 readers at once held the event loop for tens of milliseconds
    on SQLite, with the connections idle: now it is claimed a piece at a time, and other
    tasks (the connections) run between pieces. Every row is claimed once, in id order."""
    import digest.delivery.work as work

    monkeypatch.setattr(work, "PIECE", 2)
    store = any_store
    edition = make_edition(store)
    readers = add(store, 7)
    store.queue_deliveries(edition.id, [r.id for r in readers])
    turns = 0

    async def connection() -> None:  # stands for a sender taking the server's replies
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def claim() -> tuple[list, int]:
        other = asyncio.create_task(connection())
        await asyncio.sleep(0)
        before = turns
        claims = await work.claimed(store, edition.id, "w1", 5, None)
        during = turns - before
        rest = await work.claimed(store, edition.id, "w1", 5, claims[-1].delivery_id)
        other.cancel()
        await store.aclose()
        return claims + rest, during

    claims, during = asyncio.run(claim())
    assert during >= 3  # a turn after each of the three pieces of five rows
    ids = [c.delivery_id for c in claims]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert {c.subscriber.id for c in claims} == {r.id for r in readers}


def test_a_4xx_that_never_clears_fails_after_the_maximum_attempts(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    (stuck,) = add(store, 1)
    script = Script(rcpt={stuck.email: "450 4.2.1 Mailbox busy"})
    with ScriptedServer(script) as server:
        report = send_edition(
            store, edition, smtp_settings(settings, server.port, smtp_max_attempts=3),
            retry_delay=0.01,
        )  # fmt: skip
    assert report.failed == 1 and not report.ok
    (row,) = store.deliveries(edition.id)
    assert row.status is DeliveryStatus.FAILED and row.attempts == 3 and "450" in row.last_error


def test_bad_mailbox_fails_and_is_suppressed_but_554_is_not(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    bad, spammy, fine = add(store, 3)
    script = Script(
        rcpt={bad.email: "550 5.1.1 No such user"},
        data={spammy.email: "554 5.7.1 Rejected"},
    )
    with ScriptedServer(script) as server:
        report = send_edition(store, edition, smtp_settings(settings, server.port))
    assert (report.sent, report.failed, report.suppressed) == (1, 2, 1)
    assert store.get_subscriber(bad.id).status is SubscriberStatus.BOUNCED
    assert store.get_subscriber(spammy.id).status is SubscriberStatus.ACTIVE
    assert "failed 2" in report.summary()


def test_lost_connection_after_data_is_unknown_and_only_resent_when_asked(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    lost, fine = add(store, 2)
    with ScriptedServer(Script(data={lost.email: "disconnect"})) as server:
        smtp = smtp_settings(settings, server.port)
        first = send_edition(store, edition, smtp)
        again = send_edition(store, edition, smtp)
        server.handler.script.data.clear()
        retried = send_edition(store, edition, smtp, retry_unknown=True)
    assert (first.unknown, first.sent, first.ok) == (1, 1, False)
    assert (again.sent, again.unknown) == (0, 0)
    assert (retried.retried_unknown, retried.sent) == (1, 1)
    assert server.handler.counts == {lost.email: 1, fine.email: 1}


def test_auth_failure_pauses_the_run_instead_of_storming(store: Store, settings: Settings) -> None:
    edition = make_edition(store)
    add(store, 30)
    with ScriptedServer(auth=("mailer", "right")) as server:
        smtp = smtp_settings(
            settings, server.port, smtp_username="mailer", smtp_password="wrong", smtp_connections=4
        )
        report = send_edition(store, edition, smtp, failure_pause=0.01)
    assert report.paused and "535" in report.paused and not report.ok
    # One login per pooled connection (aiosmtplib tries PLAIN, then LOGIN), not one per reader.
    assert server.handler.auth_attempts <= 2 * 4
    assert report.sent == 0 and server.messages == []
    assert set(statuses(store, edition).values()) == {DeliveryStatus.QUEUED}
    assert "PAUSED" in report.summary()


def test_unsubscribe_mid_send_is_honoured(store: Store, settings: Settings) -> None:
    edition = make_edition(store)
    readers = add(store, 4)
    leaver = readers[-1]

    class UnsubscribesOnFirstSend(MemoryTransport):
        async def send(self, message, written=None, mark=None) -> None:
            if not self.messages:  # while the run is going, the last reader unsubscribes
                store.set_subscriber_status(leaver.id, SubscriberStatus.UNSUBSCRIBED)
            await super().send(message, written, mark)

    memory = UnsubscribesOnFirstSend()
    report = send_edition(store, edition, settings, transport=memory)
    assert leaver.email not in {m.recipient for m in memory.messages}
    assert report.sent == 3 and report.skipped == 1
    assert statuses(store, edition)[leaver.id] is DeliveryStatus.SKIPPED


def test_rows_a_crashed_run_left_in_sending_become_unknown_and_are_not_resent(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    crashed, rest = add(store, 2)
    store.queue_deliveries(edition.id, [crashed.id, rest.id])
    # What a killed process leaves behind: its claim and a row in `sending`, and no live holder.
    claim = store.claim_deliveries(edition.id, "otherhost:4242:dead", 1)[0]
    assert store.begin_sending(claim.delivery_id, crashed.id)
    memory = MemoryTransport()
    report = send_edition(store, edition, settings, transport=memory)
    assert [m.recipient for m in memory.messages] == [rest.email]
    assert report.unknown == 1 and statuses(store, edition)[crashed.id] is DeliveryStatus.UNKNOWN
    assert not report.ok and "1 delivery has an unknown outcome" in report.unresolved


def test_a_second_sqlite_sender_is_kept_out_by_the_lease(
    store: Store, settings: Settings, db_url: str
) -> None:
    edition = make_edition(store)
    add(store, 1)
    other = Store(db_url)  # another process, on another machine: alive by its renewed lease
    with other.alive("otherhost:77:live"):
        assert other.acquire_lease("send", "otherhost:77:live", timedelta(minutes=1))
        with pytest.raises(DigestError, match="another `digest send` is running"):
            send_edition(store, edition, settings, transport=MemoryTransport())
    other.close()
    with pytest.raises(DigestError, match="PostgreSQL"):
        send_edition(store, edition, settings, transport=MemoryTransport(), worker=True)


def test_dry_run_counts_and_renders_but_sends_and_records_nothing(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    add(store, 3)
    add(store, 2, "short", max_papers=1)
    memory = MemoryTransport()
    report = send_edition(store, edition, settings, transport=memory, dry_run=True)
    assert (report.would_send, report.contents) == (5, 2)
    assert memory.messages == [] and store.deliveries(edition.id) == []
    assert "would send 5" in report.summary()


def test_dry_run_does_not_count_subscribers_whose_selection_is_empty(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    add(store, 2)
    add(store, 3, "bees", keywords=("beekeeping",))  # nothing in the edition matches
    report = send_edition(store, edition, settings, transport=MemoryTransport(), dry_run=True)
    assert report.would_send == 2
    real = send_edition(store, edition, settings, transport=MemoryTransport())
    assert real.sent == 2


def test_file_transport_by_default_writes_one_eml_per_subscriber(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    add(store, 3)
    report = send_edition(store, edition, settings)
    folder = settings.outbox / edition.key
    assert report.sent == 3 and len(list(folder.glob("*.eml"))) == 3
    assert len(list(folder.glob("*.html"))) == 3


def test_rate_limiter_spaces_messages_and_keeps_the_hourly_window() -> None:
    now = [1000.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    async def scenario() -> None:
        per_second = Throttle(per_second=4, clock=lambda: now[0], sleep=sleep)
        for _ in range(3):
            await per_second.acquire()
        hourly = Throttle(per_hour=2, history=[now[0] - 3000], clock=lambda: now[0], sleep=sleep)
        await hourly.acquire()  # one slot left in the window
        await hourly.acquire()  # full: waits until the message 3000 s ago is an hour old

    asyncio.run(scenario())
    assert waits == [0.25, 0.25, 600.0]


def test_the_hourly_window_is_kept_when_a_timer_fires_early() -> None:
    # uvloop's timers count whole milliseconds: a wait may end up to one early. The next
    # message must still not go before the oldest of the window is an hour old.
    now = [1000.0]
    went: list[float] = []

    async def early_sleep(seconds: float) -> None:  # a millisecond early, if it can be
        now[0] += seconds - 0.001 if seconds > 0.002 else seconds

    async def scenario() -> None:
        hourly = Throttle(per_hour=1, history=[now[0] - 3000], clock=lambda: now[0],
                          sleep=early_sleep)  # fmt: skip
        await hourly.acquire()
        went.append(now[0])

    asyncio.run(scenario())
    assert went[0] >= 1000.0 + 600.0


def test_report_summary_and_ok() -> None:
    report = DeliveryReport("daily-2026-11-26", sent=3, deferred=1)
    assert report.ok and report.summary() == (
        "daily-2026-11-26: sent 3, deferred 1, failed 0, unknown 0"
    )
    assert not DeliveryReport("k", unknown=1).ok


def test_deliver_needs_a_stored_edition(settings: Settings, store: Store) -> None:
    unsaved = Edition("daily-x", Frequency.DAILY, date(2026, 1, 1), ())
    with pytest.raises(ValueError):
        asyncio.run(deliver(store, unsaved, settings, transport=MemoryTransport()))


def test_the_send_loop_keeps_to_the_messages_per_second_limit(
    store: Store, settings: Settings
) -> None:
    edition = make_edition(store)
    add(store, 6)
    memory = MemoryTransport()
    start = time.monotonic()
    report = send_edition(store, edition, settings.model_copy(update={"smtp_rate": 20.0}),
                          transport=memory)  # fmt: skip
    elapsed = time.monotonic() - start
    assert report.sent == 6 and elapsed >= 5 / 20  # six messages: five gaps of 50 ms


def test_a_transport_bug_is_recorded_unknown_once_not_retried_forever(
    store: Store, settings: Settings
) -> None:
    """A transport that raises something no transport should, before it took the row's mark:
    the run ends, and the row is left for the admin as ``unknown`` with the error."""
    edition = make_edition(store)
    (reader,) = add(store, 1)

    class Broken(MemoryTransport):
        async def send(self, message, written=None, mark=None) -> None:
            raise RuntimeError("bug in a transport")

    report = send_edition(store, edition, settings, transport=Broken())
    assert report.unknown == 1 and report.sent == 0
    assert statuses(store, edition)[reader.id] is DeliveryStatus.UNKNOWN


@pytest.mark.parametrize("uvloop_installed", [True, False])
def test_a_send_runs_on_uvloop_where_installed_and_on_asyncio_without_it(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch, uvloop_installed: bool
) -> None:
    if not uvloop_installed:  # as on Windows, where uvloop does not build
        monkeypatch.setitem(sys.modules, "uvloop", None)
    edition = make_edition(store)
    readers = add(store, 6)
    loops: set[str] = set()

    class Watched(MemoryTransport):
        async def send(self, message, written=None, mark=None) -> None:
            loops.add(type(asyncio.get_running_loop()).__module__.split(".")[0])
            await super().send(message, written, mark)

    with ScriptedServer() as server:
        report = send_edition(store, edition, smtp_settings(settings, server.port))
        assert report.sent == len(readers) and report.ok
        assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(
            r.email for r in readers
        )
    second = make_edition(store, "daily-2026-11-27")
    watched = Watched()
    assert send_edition(store, second, settings, transport=watched).sent == len(readers)
    assert loops == {"uvloop" if uvloop_installed else "asyncio"}
