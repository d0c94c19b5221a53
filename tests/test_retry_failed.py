"""Failures an admin can act on (issue 11 #5): grouped by cause, retried once it is fixed.

Reported: a bad DIGEST_FROM failed every delivery, and after the fix neither `send` nor
`--retry-unknown` retried them, `failed` was forever; a relay answering `550 5.7.1` (policy,
not a bad mailbox) to everyone was the same dead end. Real aiosmtpd servers on 127.0.0.1,
a real SQLite ledger.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Settings
from digest.delivery import send_edition
from digest.delivery.failures import failure_of
from digest.delivery.transports import PermanentFailure, TemporaryFailure, classify_reply
from digest.models import DeliveryStatus, FailureKind, SubscriberStatus
from digest.store import Store
from tests.smtpserver import Script, ScriptedServer
from tests.test_delivery import add, make_edition, smtp_settings
from tests.test_send_cli import TEST_ENV


def smtp_env(db_url: str, port: int) -> dict[str, str]:
    return {
        **TEST_ENV,
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_TRANSPORT": "smtp",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": "2",
    }


def send(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, ["send", *args], env=env, catch_exceptions=False)


def test_a_relay_refusing_by_policy_is_a_dead_end_until_retry_failed_sends_each_once(
    store: Store, db_url: str
) -> None:
    edition = make_edition(store)
    readers = add(store, 3)
    with ScriptedServer(Script(rcpt={"*": "550 5.7.1 Relaying denied"})) as server:
        env = smtp_env(db_url, server.port)
        first = send(env)
        assert (
            first.exit_code == 1 and f"{edition.key}: sent 0, deferred 0, failed 3" in first.output
        )
        assert "3 may go again once the cause is fixed" in first.output
        again = send(env)  # the old dead end: a plain send never retries a failed row
        assert f"{edition.key}: sent 0," in again.output and server.messages == []
        status = json.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).output)
        assert status["failures"] == [{
            "reason": "550 5.7.1 refused by policy", "cause": "policy", "code": "550 5.7.1",
            "count": 3, "retryable": 3, "editions": [edition.key],
        }]  # fmt: skip
        assert "550 5.7.1 refused by policy" in CliRunner().invoke(cli, ["status"], env=env).output
        server.handler.script.rcpt.clear()  # the relay's admin allowed us
        retried = send(env, "--retry-failed")
        assert retried.exit_code == 0, retried.output
        assert f"{edition.key}: sent 3, deferred 0, failed 0" in retried.output
        assert "queued 3 failed deliveries again" in retried.output
        once_more = send(env, "--retry-failed")
        assert "sent 0," in once_more.output and "queued 0 failed" in once_more.output
    assert server.handler.counts == {r.email: 1 for r in readers}
    assert {d.status for d in store.deliveries(edition.id)} == {DeliveryStatus.SENT}


def test_a_bad_from_fails_every_delivery_and_after_the_fix_each_gets_it_once(
    store: Store, settings: Settings, db_url: str
) -> None:
    edition = make_edition(store)
    readers = add(store, 3)
    # As with DIGEST_FROM='not an address' (settings validation may stop it at start-up; the
    # library takes it, so the ledger path is tested whatever the start-up check does).
    broken = settings.model_copy(update={"sender": "not an address"})
    report = send_edition(store, edition, broken)
    assert report.failed == 3 and report.sent == 0
    rows = store.deliveries(edition.id)
    assert {(d.status, d.failure) for d in rows} == {(DeliveryStatus.FAILED, FailureKind.RENDER)}
    with ScriptedServer() as server:
        env = smtp_env(db_url, server.port)
        status = CliRunner().invoke(cli, ["status"], env=env).output
        assert "the email could not be built: From: not an email address" in status
        unknown = send(env, "--retry-unknown")  # not for failed rows: nothing goes out
        assert f"{edition.key}: sent 0," in unknown.output and server.messages == []
        retried = send(env, "--retry-failed")
        assert retried.exit_code == 0 and "sent 3," in retried.output, retried.output
    assert server.handler.counts == {r.email: 1 for r in readers}
    assert all(m.mail_from == "digest@example.org" for m in server.messages)


def _mixed_failures_then_retry(store: Store, settings: Settings, retry) -> None:
    """A hard bounce, a policy refusal, a too-big message, a subscriber who left, one sent."""
    edition = make_edition(store)
    bounce, policy, size, leaver, fine = add(store, 5)
    script = Script(rcpt={
        bounce.email: "550 5.1.1 No such user",
        policy.email: "550 5.7.1 Sender not authorised",
        leaver.email: "554 5.7.1 Message rejected as spam",
    }, data={size.email: "552 5.3.4 Message too big"})  # fmt: skip
    with ScriptedServer(script) as server:
        report = send_edition(store, edition, smtp_settings(settings, server.port))
        assert (report.sent, report.failed, report.suppressed) == (1, 4, 1)
        rows = store.deliveries(edition.id)
        failures = {d.subscriber_id: (d.failure, d.failure_code) for d in rows}
        assert failures[bounce.id] == (FailureKind.MAILBOX, "550 5.1.1")
        assert failures[policy.id] == (FailureKind.POLICY, "550 5.7.1")
        assert failures[size.id] == (FailureKind.SIZE, "552 5.3.4")
        assert store.get_subscriber(bounce.id).status is SubscriberStatus.BOUNCED
        store.unsubscribe(leaver.id)
        assert store.retryable_failures(edition.id) == 2
        groups = {(g.failure, g.code, g.count, g.retryable) for g in store.failure_groups()}
        assert groups == {
            (FailureKind.MAILBOX, "550 5.1.1", 1, 0), (FailureKind.POLICY, "550 5.7.1", 1, 1),
            (FailureKind.SIZE, "552 5.3.4", 1, 1), (FailureKind.POLICY, "554 5.7.1", 1, 0),
        }  # fmt: skip
        server.handler.script.rcpt.clear()
        server.handler.script.data.clear()
        retry(server.port)
    assert server.handler.counts == {fine.email: 1, policy.email: 1, size.email: 1}
    states = {d.subscriber_id: d.status for d in store.deliveries(edition.id)}
    assert states[bounce.id] is DeliveryStatus.FAILED and states[leaver.id] is DeliveryStatus.FAILED
    groups = {(g.failure, g.count, g.retryable) for g in store.failure_groups()}
    assert groups == {(FailureKind.MAILBOX, 1, 0), (FailureKind.POLICY, 1, 0)}


def test_retry_failed_never_resends_hard_bounces_inactive_subscribers_or_delivered_rows(
    store: Store, settings: Settings, db_url: str
) -> None:
    def retry(port: int) -> None:
        retried = send(smtp_env(db_url, port), "--retry-failed")
        assert "sent 2," in retried.output and "queued 2 failed" in retried.output

    _mixed_failures_then_retry(store, settings, retry)


def test_failures_are_grouped_and_retried_the_same_on_postgresql(
    request: pytest.FixtureRequest, settings: Settings
) -> None:
    database = request.getfixturevalue("pg_url")
    store = Store(database)
    store.migrate()
    live = settings.model_copy(update={"database_url": database})

    def retry(port: int) -> None:
        edition = store.latest_edition()
        report = send_edition(store, edition, smtp_settings(live, port), retry_failed=True)
        assert (report.retried_failed, report.sent) == (2, 2)

    try:
        _mixed_failures_then_retry(store, live, retry)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("stage", "reply", "kind", "code"),
    [
        ("rcpt", "550 5.1.1 No such user", FailureKind.MAILBOX, "550 5.1.1"),
        ("data", "550 5.7.1 Sender not authorised (DMARC)", FailureKind.POLICY, "550 5.7.1"),
        ("data", "554 5.7.1 Rejected as spam", FailureKind.POLICY, "554 5.7.1"),
        ("data", "552 Message size exceeds fixed maximum", FailureKind.SIZE, "552"),
        ("rcpt", "552 5.2.2 Mailbox full", FailureKind.SIZE, "552 5.2.2"),
        ("data", "554 5.6.0 Message content rejected", FailureKind.REJECTED, "554 5.6.0"),
        ("rcpt", "550 Requested action not taken", FailureKind.REJECTED, "550"),
        ("data", "451 4.3.0 Try again later", FailureKind.TEMPORARY, "451 4.3.0"),
    ],
)
def test_each_reply_is_kept_as_a_cause_and_a_code(
    stage: str, reply: str, kind: FailureKind, code: str
) -> None:
    error = classify_reply(int(reply[:3]), reply[4:], stage=stage)
    assert isinstance(error, PermanentFailure | TemporaryFailure)
    assert failure_of(error) == (kind, code)
    assert kind.retryable is (kind is not FailureKind.MAILBOX)


def test_rows_that_failed_before_causes_were_kept_get_one_from_their_error(db_url: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", "digest.store:migrations")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO editions (id, key, frequency, date, status, created_at) "
            "VALUES (1, 'daily-2026-11-26', 'daily', '2026-11-26', 'sent', '2026-11-26 07:00:00')"
        )
        for i, error in enumerate(
            ["550 5.1.1 No such user", "550 5.7.1 Relaying denied", "render: From: bad", "nope"]
        ):
            conn.exec_driver_sql(
                "INSERT INTO subscribers (id, email, status, topics, keywords, frequency, "
                f"created_at, confirm_nonce) VALUES ({i}, 'r{i}@example.org', 'active', '[]', "
                "'[]', 'daily', '2026-11-01 00:00:00', 0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, last_error, "
                f"updated_at) VALUES (1, {i}, 'failed', 1, '{error}', '2026-11-26 07:01:00')"
            )
    engine.dispose()
    store = Store(db_url)
    store.migrate()
    found = [(d.failure, d.failure_code) for d in store.deliveries(1)]
    assert found == [
        (FailureKind.MAILBOX, "550 5.1.1"),
        (FailureKind.POLICY, "550 5.7.1"),
        (FailureKind.RENDER, None),
        (FailureKind.REJECTED, None),
    ]
    assert store.retryable_failures(1) == 3
    store.close()
