"""The send loop builds and marks each next message while the one before is on the wire, and
the ledger stays exact: watched from the SMTP server itself, on SQLite and PostgreSQL, every
message arrives with its row already committed as ``sending``, and no moment has more than
2 x connections rows in ``sending`` (what a crash could leave ``unknown``). A run that pauses
hands the rows it marked ahead back to the queue."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa

from digest.config import Settings
from digest.delivery import ledger, run, send_edition
from digest.models import DeliveryStatus
from digest.store import Store, StoreError
from digest.store.schema import deliveries, subscribers
from tests.smtpserver import Script, ScriptedServer
from tests.test_delivery import add, make_edition, smtp_settings

CONNECTIONS = 3
READERS = 90


def row_status(conn: sa.Connection, email: str) -> str:
    """The ledger status of the row of the reader with this address, as the database has it."""
    return conn.execute(
        sa.select(deliveries.c.status)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(subscribers.c.email == email)
    ).scalar_one()


def rows_sending(conn: sa.Connection) -> int:
    """How many rows are ``sending`` right now."""
    return conn.execute(
        sa.select(sa.func.count()).where(deliveries.c.status == str(DeliveryStatus.SENDING))
    ).scalar_one()


def test_each_message_arrives_marked_and_at_most_two_rows_per_connection_are_sending(
    any_db_url: str, settings: Settings
) -> None:
    store = Store(any_db_url)
    store.migrate()
    edition = make_edition(store)
    add(store, READERS)
    watcher = sa.create_engine(any_db_url)  # the server's own view of the ledger
    seen: list[tuple[str, int]] = []  # (the arriving message's row status, rows in sending)

    def watch(recipients: list[str]) -> None:
        with watcher.connect() as conn:
            seen.append((row_status(conn, recipients[0]), rows_sending(conn)))

    with ScriptedServer(Script(watch=watch)) as server:
        config = smtp_settings(
            settings, server.port, smtp_connections=CONNECTIONS, database_url=any_db_url
        )
        report = send_edition(store, edition, config)
    watcher.dispose()

    assert report.sent == READERS and len(server.messages) == READERS
    assert len(seen) == READERS
    assert {own for own, _ in seen} == {str(DeliveryStatus.SENDING)}
    assert max(sending for _, sending in seen) <= 2 * CONNECTIONS
    # The connections overlap (else the bound above says little): several rows at once.
    assert max(sending for _, sending in seen) > 1
    assert store.delivery_counts(edition.id) == {str(DeliveryStatus.SENT): READERS}
    store.close()


def test_a_paused_run_hands_the_rows_marked_ahead_back_to_the_queue(
    any_db_url: str, settings: Settings
) -> None:
    store = Store(any_db_url)
    store.migrate()
    edition = make_edition(store)
    slow, *rest = add(store, READERS)
    # The first message takes half a second to be answered; its connection marks its next row
    # meanwhile. The other connections are refused (530: our login) and pause the run.
    script = Script(slow={slow.email: 0.5}, rcpt={r.email: "530 5.7.0 Log in first" for r in rest})
    with ScriptedServer(script) as server:
        config = smtp_settings(
            settings, server.port, smtp_connections=CONNECTIONS, database_url=any_db_url
        )
        paused = send_edition(store, edition, config, failure_pause=0.05)
        after_pause = store.delivery_counts(edition.id)
        script.rcpt.clear()
        resumed = send_edition(store, edition, config)

    assert paused.paused and "530" in paused.paused and paused.sent == 1
    # The row marked ahead was never handed over: back in the queue, not left `sending`.
    sent, queued = str(DeliveryStatus.SENT), str(DeliveryStatus.QUEUED)
    assert after_pause == {sent: 1, queued: READERS - 1}
    assert resumed.sent == READERS - 1 and not resumed.paused
    assert sorted(server.handler.counts.values()) == [1] * READERS
    store.close()


def test_a_row_marked_ahead_goes_back_to_the_queue_while_a_reply_is_slow(
    any_db_url: str, settings: Settings, monkeypatch
) -> None:
    """Marked ahead at first; handed back once the reply takes longer than AHEAD_HOLD, so a
    crash then would leave only the message the server holds unknown; then sent at its turn."""
    monkeypatch.setattr(run, "AHEAD_HOLD", 0.2)
    store = Store(any_db_url)
    store.migrate()
    edition = make_edition(store)
    slow, *rest = add(store, 3)
    watcher = sa.create_engine(any_db_url)
    sending: dict[float, int] = {}  # seconds after the slow message's data arrived -> rows

    def count(at: float) -> None:
        with watcher.connect() as conn:
            sending[at] = rows_sending(conn)

    def watch(recipients: list[str]) -> None:
        if recipients == [slow.email]:
            for at in (0.1, 0.4):
                threading.Timer(at, count, (at,)).start()

    with ScriptedServer(Script(slow={slow.email: 0.6}, watch=watch)) as server:
        config = smtp_settings(settings, server.port, smtp_connections=1, database_url=any_db_url)
        report = send_edition(store, edition, config)
    watcher.dispose()

    assert sending == {0.1: 2, 0.4: 1}  # the next row marked ahead, then handed back
    assert report.sent == 3 and sorted(server.handler.counts.values()) == [1, 1, 1]
    assert store.delivery_counts(edition.id) == {str(DeliveryStatus.SENT): 3}
    store.close()


def test_a_ledger_connection_lost_mid_send_stops_the_run_before_any_unmarked_message(
    pg_url: str, settings: Settings
) -> None:
    """PostgreSQL's ledger commits go through their own connection; killed mid-send, the run
    stops with a database error and no message goes out without its ``sending`` mark."""
    store = Store(pg_url)
    store.migrate()
    edition = make_edition(store)
    add(store, READERS)
    watcher = sa.create_engine(pg_url)
    arrived: list[str] = []  # the status of each arriving message's row

    def watch(recipients: list[str]) -> None:
        with watcher.connect() as conn:
            arrived.append(row_status(conn, recipients[0]))
            if len(arrived) == 10:  # the ledger's backend dies, as in a server restart
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE :ledger "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"ledger": "WITH done AS%"},
                )

    with ScriptedServer(Script(watch=watch)) as server:
        config = smtp_settings(
            settings, server.port, smtp_connections=CONNECTIONS, database_url=pg_url
        )
        with pytest.raises(StoreError, match="database error"):
            send_edition(store, edition, config)
    watcher.dispose()

    assert 10 <= len(arrived) < READERS  # it stopped soon after
    assert set(arrived) == {str(DeliveryStatus.SENDING)}
    counts = store.delivery_counts(edition.id)
    assert counts.get(str(DeliveryStatus.SENDING), 0) <= 2 * CONNECTIONS
    assert counts.get(str(DeliveryStatus.SENT), 0) <= len(arrived)
    store.close()


def test_marks_asked_for_ahead_wait_until_wanted_then_go_in_one_commit(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each commit is a round trip to a server process that must be woken: a mark
    asked for ahead waits until the send loop wants it, and then every waiting mark goes in
    one commit. One that nobody wants is still committed, after AHEAD_WAIT."""
    store = Store(pg_url)
    store.migrate()
    edition = make_edition(store)
    add(store, 3)
    store.queue_active(edition.id, edition.frequency)
    first, second, third = (d.id for d in store.deliveries(edition.id))
    watcher = sa.create_engine(pg_url)

    def committed() -> dict[int, str]:
        with watcher.connect() as conn:
            return dict(conn.execute(sa.select(deliveries.c.id, deliveries.c.status)).all())

    queued, sending = str(DeliveryStatus.QUEUED), str(DeliveryStatus.SENDING)

    async def scenario() -> None:
        monkeypatch.setattr(ledger, "AHEAD_WAIT", 30.0)
        writer = ledger.LedgerWriter(store.send_ledger())
        marks = [asyncio.ensure_future(writer.begin(did, ahead=True)) for did in (first, second)]
        await asyncio.sleep(0.2)
        assert not any(mark.done() for mark in marks)  # nobody wanted them yet
        assert set(committed().values()) == {queued}
        writer.want()
        assert await asyncio.gather(*marks) == [True, True]
        assert writer.commits == 1  # both in one commit
        assert committed() == {first: sending, second: sending, third: queued}

        monkeypatch.setattr(ledger, "AHEAD_WAIT", 0.05)  # never wanted: committed all the same
        assert await asyncio.wait_for(writer.begin(third, ahead=True), timeout=10)
        assert committed()[third] == sending and writer.commits == 2
        await writer.aclose()

    asyncio.run(scenario())
    watcher.dispose()
    store.close()
