"""The send loop builds each next message while the one before is on the wire, and the ledger
stays exact: watched from the SMTP server itself, on SQLite and PostgreSQL, every message
arrives with its row already committed as ``sending``, and no moment has more than
2 x connections rows in ``sending`` (what a crash could leave ``unknown``)."""

from __future__ import annotations

import sqlalchemy as sa

from digest.config import Settings
from digest.delivery import send_edition
from digest.models import DeliveryStatus
from digest.store import Store
from digest.store.schema import deliveries, subscribers
from tests.smtpserver import Script, ScriptedServer
from tests.test_delivery import add, make_edition, smtp_settings

CONNECTIONS = 3
READERS = 90


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
            own = conn.execute(
                sa.select(deliveries.c.status)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(subscribers.c.email == recipients[0])
            ).scalar_one()
            sending = conn.execute(
                sa.select(sa.func.count()).where(deliveries.c.status == str(DeliveryStatus.SENDING))
            ).scalar_one()
        seen.append((own, sending))

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
