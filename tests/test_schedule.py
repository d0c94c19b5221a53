"""The scheduler: on time in the user's time zone, once per day, once across two schedulers.

The clock is controlled, never slept through: fire times come from the real APScheduler
triggers, and the coalescing test moves APScheduler's own clock forward two days.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from click.testing import CliRunner
from conftest import TEST_SECRET

from digest import pipeline, schedule
from digest.config import ConfigError, load_settings
from digest.models import Frequency, Subscriber
from digest.store import Store

SUBSCRIBERS = ("ada@example.org", "grace@example.org", "alan@example.org")


def write_papers(path: Path, day: date, n: int = 3) -> None:
    """A JSON Lines papers file whose ids are new for ``day`` (arXiv-style YYMM.NNNNN)."""
    lines = []
    for i in range(n):
        number = day.timetuple().tm_yday * 10 + i
        lines.append(
            json.dumps(
                {
                    "id": f"{day:%y%m}.{number:05d}",
                    "title": f"Paper {i} of {day.isoformat()} on language model reasoning",
                    "abstract": "We study reasoning in large language models and report results.",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_settings(tmp_path: Path, **overrides: object):
    values = {
        "database_url": f"sqlite:///{tmp_path / 'digest.db'}",
        "outbox": tmp_path / "outbox",
        "secret_key": TEST_SECRET,
        "base_url": "https://digest.example.org",
        "sender": "digest <digest@example.org>",
        "sources": ["file"],
        "papers_file": tmp_path / "papers.jsonl",
    }
    values.update(overrides)
    return load_settings(**values)


def add_subscribers(store: Store) -> None:
    for address in SUBSCRIBERS:
        store.add_subscriber(Subscriber(email=address))


def invoke(args: list[str], env: dict[str, str] | None = None):
    from digest.cli import cli  # imports every stage; only the tests that need it pay

    return CliRunner().invoke(cli, args, env=env)


def emails(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(outbox.rglob("*.eml"))
    ]


# --- triggers: what fires when ---


def fire_times(trigger, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``start``, as APScheduler's scheduler asks for them."""
    times, previous, now = [], None, start
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        times.append(previous)
        now = previous
    return times


def test_default_schedule_is_weekdays_at_seven_local(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="Europe/Berlin")
    tz = ZoneInfo("Europe/Berlin")
    times = fire_times(schedule.daily_trigger(settings), datetime(2026, 11, 21, tzinfo=tz), 5)
    local = [t.astimezone(tz) for t in times]
    assert [t.strftime("%a %H:%M") for t in local] == [
        "Mon 07:00", "Tue 07:00", "Wed 07:00", "Thu 07:00", "Fri 07:00"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("0 7 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),  # APScheduler alone: Tue-Sat
        ("0 7 * * 0", ["Sun"]),
        ("0 7 * * 7", ["Sun"]),
        ("0 7 * * 6,0", ["Sat", "Sun"]),
        ("0 7 * * */3", ["Sun", "Wed", "Sat"]),
        ("0 7 * * sat-sun", ["Sat", "Sun"]),
    ],
)
def test_numeric_weekdays_mean_what_cron_means(tmp_path: Path, expr: str, days: list[str]) -> None:
    settings = make_settings(tmp_path, schedule=expr)
    times = fire_times(
        schedule.daily_trigger(settings), datetime(2026, 11, 22, tzinfo=ZoneInfo("UTC")), 14
    )
    assert sorted({t.strftime("%a") for t in times}) == sorted(days)


def test_weekly_edition_fires_on_the_weekly_day_at_the_daily_time(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, schedule="30 6 * * mon-fri", weekly_day="sun", timezone="America/New_York"
    )
    tz = ZoneInfo("America/New_York")
    times = fire_times(schedule.weekly_trigger(settings), datetime(2026, 11, 1, tzinfo=tz), 3)
    assert [t.astimezone(tz).strftime("%Y-%m-%d %a %H:%M") for t in times] == [
        "2026-11-01 Sun 06:30", "2026-11-08 Sun 06:30", "2026-11-15 Sun 06:30"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"schedule": "0 7 * *"}, "DIGEST_SCHEDULE"),
        ({"schedule": "0 25 * * *"}, "DIGEST_SCHEDULE"),
        ({"schedule": "0 7 * * 9"}, "DIGEST_SCHEDULE"),
        ({"timezone": "Mars/Olympus"}, "DIGEST_TIMEZONE"),
        ({"weekly_day": "someday"}, "DIGEST_WEEKLY_DAY"),
    ],
)
def test_a_bad_schedule_setting_is_one_line_naming_the_variable(
    tmp_path: Path, overrides: dict, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, **overrides)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        schedule.triggers(settings)
    for key, value in overrides.items():
        monkeypatch.setenv(f"DIGEST_{key.upper()}", value)
    monkeypatch.setenv("DIGEST_SECRET_KEY", TEST_SECRET)
    result = invoke(["serve"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {variable}: ")
    assert len(result.output.strip().splitlines()) == 1


def test_a_restart_just_after_the_fire_time_still_runs_that_edition(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="Europe/Berlin", misfire_grace=3600)
    tz = ZoneInfo("Europe/Berlin")

    def first_daily(now: datetime) -> datetime:
        scheduler = schedule.build_scheduler(settings, lambda frequency: None, now=now)
        return scheduler.get_job("daily-edition").next_run_time

    # Down over 07:00, back at 07:05: today's edition runs at once, not tomorrow.
    assert first_daily(datetime(2026, 11, 26, 7, 5, tzinfo=tz)) == datetime(
        2026, 11, 26, 7, 0, tzinfo=tz
    )
    # Back after the grace time: the next edition is tomorrow's.
    assert first_daily(datetime(2026, 11, 26, 9, 0, tzinfo=tz)) == datetime(
        2026, 11, 27, 7, 0, tzinfo=tz
    )


# --- the real job across daylight-saving changes ---


@pytest.mark.parametrize(
    ("tz_name", "start", "at", "repeated"),
    [
        # Spring forward Sun 8 March 2026, 02:00 -> 03:00: 02:30 does not exist that day.
        ("America/New_York", date(2026, 3, 6), "30 2", False),
        # Fall back Sun 1 November 2026, 02:00 -> 01:00: 01:30 happens twice.
        ("America/New_York", date(2026, 10, 30), "30 1", True),
        # Spring forward Sun 29 March 2026, 02:00 -> 03:00.
        ("Europe/Berlin", date(2026, 3, 27), "30 2", False),
        # Fall back Sun 25 October 2026, 03:00 -> 02:00: 02:30 happens twice.
        ("Europe/Berlin", date(2026, 10, 23), "30 2", True),
    ],
)
def test_exactly_one_edition_per_local_day_across_dst(
    tmp_path: Path, tz_name: str, start: date, at: str, repeated: bool
) -> None:
    # The worst time of day to pick: missing on the spring day, twice on the autumn day.
    settings = make_settings(tmp_path, schedule=f"{at} * * *", timezone=tz_name)
    tz = ZoneInfo(tz_name)
    store = Store(settings.database_url)
    store.migrate()
    add_subscribers(store)
    days = [start + timedelta(days=i) for i in range(5)]
    trigger = schedule.daily_trigger(settings)
    times = fire_times(trigger, datetime.combine(start, datetime.min.time(), tz), 7)
    times = [t for t in times if t.astimezone(tz).date() <= days[-1]]
    # APScheduler fires at both 02:30s of the autumn day; only the lock and the edition key
    # stand between that and a second email.
    assert len(times) == len(days) + (1 if repeated else 0)
    for fire_time in times:
        write_papers(settings.papers_file, fire_time.astimezone(tz).date())
        pipeline.run_scheduled(settings, store, Frequency.DAILY, fire_time, holder="test")
    keys = sorted(e.key for e in store.list_editions())
    assert keys == [f"daily-{d.isoformat()}" for d in days]
    for d in days:
        folder = settings.outbox / f"daily-{d.isoformat()}"
        sent = sorted(str(m["To"]) for m in emails(folder))
        assert sent == sorted(SUBSCRIBERS), d
    store.close()


# --- coalescing: a clock jump gives one catch-up run ---


class FakeClock:
    """APScheduler's notion of now, moved by the test (its modules call datetime.now(tz))."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        clock = self

        class _DateTime(datetime):
            @classmethod
            def now(cls, tz=None):
                return clock.now.astimezone(tz) if tz else clock.now

        self.datetime = _DateTime


@pytest.mark.parametrize("grace_hours", [1, 72])
def test_a_two_day_clock_jump_gives_one_catch_up_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grace_hours: int
) -> None:
    tz = ZoneInfo("Europe/Berlin")
    settings = make_settings(
        tmp_path, timezone="Europe/Berlin", weekly_day="mon", misfire_grace=grace_hours * 3600
    )
    clock = FakeClock(datetime(2026, 11, 23, 6, 0, tzinfo=tz))  # Monday, before 07:00
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", clock.datetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", clock.datetime)
    monkeypatch.setattr(schedule, "datetime", clock.datetime)
    runs: list[tuple[Frequency, datetime]] = []

    async def scenario() -> dict[str, datetime]:
        daemon = schedule.Daemon(settings, store=None, run=lambda f, t: runs.append((f, t)))  # type: ignore[arg-type]
        daemon.start()
        # The machine sleeps through Monday and Tuesday, waking Wednesday at 07:10.
        clock.now = datetime(2026, 11, 25, 7, 10, tzinfo=tz)
        daemon.scheduler.wakeup()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if runs:
                break
        await asyncio.sleep(0.1)  # room for a second, wrong, run to show up
        nxt = {job.id: job.next_run_time for job in daemon.scheduler.get_jobs()}
        await daemon.stop()
        return nxt

    nxt = asyncio.run(scenario())
    # Monday's, Tuesday's and Wednesday's 07:00 coalesce into ONE run, for Wednesday.
    daily = [t for f, t in runs if f is Frequency.DAILY]
    assert daily == [datetime(2026, 11, 25, 7, 0, tzinfo=tz)]
    weekly = [t for f, t in runs if f is Frequency.WEEKLY]
    if grace_hours == 1:
        # Monday's weekly edition is two days past the grace time: missed, not run late.
        assert weekly == []
    else:
        # Within the grace time it runs once, late, for the Monday it was due.
        assert weekly == [datetime(2026, 11, 23, 7, 0, tzinfo=tz)]
    assert nxt["daily-edition"] == datetime(2026, 11, 26, 7, 0, tzinfo=tz)
    assert nxt["weekly-edition"] == datetime(2026, 11, 30, 7, 0, tzinfo=tz)


# --- two schedulers, one database ---


def test_a_run_whose_edition_lock_is_held_elsewhere_sends_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    add_subscribers(store)
    today = date(2026, 11, 26)
    write_papers(settings.papers_file, today)
    fire = datetime(2026, 11, 26, 7, 0, tzinfo=ZoneInfo("UTC"))
    other = Store(settings.database_url)
    with other.run_lock(pipeline.lock_name(Frequency.DAILY, today), "other-host:1:x") as taken:
        assert taken
        assert pipeline.run_scheduled(settings, store, Frequency.DAILY, fire, holder="me") is None
        assert not list(settings.outbox.rglob("*.eml"))
        assert store.list_editions() == []
    # Released: the next scheduler runs it, and a third run sends nothing new.
    assert pipeline.run_scheduled(settings, store, Frequency.DAILY, fire, holder="me") is not None
    assert pipeline.run_scheduled(settings, store, Frequency.DAILY, fire, holder="me") is not None
    assert sorted(str(m["To"]) for m in emails(settings.outbox)) == sorted(SUBSCRIBERS)
    outcomes = [r["outcome"] for r in store.recent_runs()]
    assert outcomes[-1] == "ok"
    other.close()
    store.close()


def test_a_long_run_keeps_its_sqlite_lease_and_a_dead_holders_lease_expires(store: Store) -> None:
    ttl = timedelta(seconds=0.3)
    with store.run_lock("run:daily-2026-11-26", "a", ttl) as taken:
        assert taken
        time.sleep(1.0)  # three lease lifetimes: the renewer thread keeps it
        with store.run_lock("run:daily-2026-11-26", "b", ttl) as other:
            assert not other
    with store.run_lock("run:daily-2026-11-26", "b", ttl) as other:
        assert other  # released at the end of the block
    # A holder that died without releasing: its lease runs out after the ttl.
    assert store.acquire_lease("run:daily-2026-11-27", "dead", ttl)
    time.sleep(0.4)
    with store.run_lock("run:daily-2026-11-27", "c", ttl) as taken:
        assert taken


def _serve(tmp_path: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-c", "from digest.cli import main; main()", "serve"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _serve_env(settings) -> dict[str, str]:
    """The environment of a `digest serve` that starts today's run as soon as it is up."""
    today = datetime.now(ZoneInfo("UTC")).date()
    not_today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today.weekday() + 3) % 7]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_OUTBOX": str(settings.outbox),
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_FROM": "digest <digest@example.org>",
        "DIGEST_SOURCES": "file",
        "DIGEST_PAPERS_FILE": str(settings.papers_file),
        # Every minute: the minute just past is within the grace time, so the process starts
        # the day's run as soon as it is up.
        "DIGEST_SCHEDULE": "* * * * *",
        "DIGEST_WEEKLY_DAY": not_today,
        "DIGEST_TIMEZONE": "UTC",
    }


def test_two_serve_processes_send_each_subscriber_one_email(tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo("UTC")).date()
    settings = make_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    add_subscribers(store)
    write_papers(settings.papers_file, today)
    env = _serve_env(settings)
    procs = [_serve(tmp_path, env, "a"), _serve(tmp_path, env, "b")]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            texts = [p.read_text() for p in logs]
            if all("run.finished" in t or "run.skipped" in t for t in texts):
                break
            assert all(p.poll() is None for p in procs), texts
            time.sleep(0.2)
        else:
            pytest.fail(f"the schedulers did not run: {[p.read_text() for p in logs]}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in procs]
    texts = [p.read_text() for p in logs]
    assert codes == [0, 0], texts
    assert all("event=serve.stopped" in t for t in texts)
    sent = emails(settings.outbox)
    assert sorted(str(m["To"]) for m in sent) == sorted(SUBSCRIBERS), texts
    # No full address ever reached the log.
    assert not any(address in t for t in texts for address in SUBSCRIBERS)

    result = invoke(["status"], env={
        "DIGEST_DATABASE_URL": settings.database_url, "DIGEST_SCHEDULE": "0 7 * * mon-fri"
    })  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"daily-{today.isoformat()}" in result.output
    assert "sent 3" in result.output
    store.close()


def test_sigterm_mid_run_finishes_the_message_in_flight_and_leaves_the_rest_queued(
    tmp_path: Path,
) -> None:
    from smtpserver import Script, ScriptedServer

    today = datetime.now(ZoneInfo("UTC")).date()
    addresses = [f"reader{i:02d}@example.org" for i in range(8)]
    with ScriptedServer(Script(delay=0.25)) as server:  # a slow server: 4 messages a second
        settings = make_settings(
            tmp_path, transport="smtp", smtp_host="127.0.0.1", smtp_port=server.port,
            smtp_security="none", smtp_connections=1,
        )  # fmt: skip
        store = Store(settings.database_url)
        store.migrate()
        for address in addresses:
            store.add_subscriber(Subscriber(email=address))
        write_papers(settings.papers_file, today)
        env = _serve_env(settings) | {
            "DIGEST_TRANSPORT": "smtp",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(server.port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SMTP_CONNECTIONS": "1",
        }
        proc = _serve(tmp_path, env, "serve")
        try:
            deadline = time.monotonic() + 60
            while len(server.messages) < 2:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        text = (tmp_path / "serve.log").read_text()
        assert code == 0, text
        got = len(server.messages)
        assert 2 <= got < len(addresses), text
        counts = store.delivery_counts()
        # The message in flight was answered and recorded; nothing is left half-sent.
        assert counts == {"sent": got, "queued": len(addresses) - got}, (counts, text)
        (run,) = store.recent_runs()
        assert run["outcome"] == "paused" and "stopping" in run["detail"], run
        result = invoke(["status"], env={"DIGEST_DATABASE_URL": settings.database_url})
        assert "PAUSED" in result.output and "stopping" in result.output

        # Restarted long after the fire time (no catch-up is due), the daemon resumes the
        # day's unfinished edition at once and sends the rest, once each.
        hour = (datetime.now(ZoneInfo("UTC")).hour + 12) % 24
        proc = _serve(tmp_path, env | {"DIGEST_SCHEDULE": f"0 {hour} * * *"}, "restart")
        try:
            deadline = time.monotonic() + 60
            while "run.finished" not in (tmp_path / "restart.log").read_text():
                assert proc.poll() is None, (tmp_path / "restart.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "restart.log").read_text()
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        assert "event=run.resume" in (tmp_path / "restart.log").read_text()
        received = sorted(r for m in server.messages for r in m.rcpt_tos)
        assert received == addresses
        assert store.paused_runs() == []
        store.close()


# --- the PostgreSQL advisory lock ---

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres() -> Store:
    import sqlalchemy as sa

    store = Store(PG_URL)
    try:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    return store


def test_postgres_advisory_lock_lets_one_scheduler_run_an_edition() -> None:
    first, second = _postgres(), _postgres()
    name = f"run:daily-test-{os.getpid()}-{time.monotonic_ns()}"
    with first.run_lock(name, "a") as a:
        assert a
        with second.run_lock(name, "b") as b:
            assert not b
    # Released at the end of the block (and by PostgreSQL itself if the process dies).
    with second.run_lock(name, "b") as b:
        assert b
    first.close()
    second.close()


# --- digest status ---


def test_status_shows_runs_next_time_and_a_paused_run_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    done = store.start_run("schedule", "daily-2026-11-25")
    store.finish_run(done, "ok", "sent 3")
    paused = store.start_run("schedule", "daily-2026-11-26")
    store.finish_run(paused, "paused", "SMTP authentication failed (535)")
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIGEST_TIMEZONE", "America/New_York")
    result = invoke(["status"])
    assert result.exit_code == 0, result.output
    assert "PAUSED" in result.output and "SMTP authentication failed (535)" in result.output
    assert "daily-2026-11-25" in result.output and " ok " in result.output
    result = invoke(["status", "--json"])
    facts = json.loads(result.output)
    nxt = datetime.fromisoformat(facts["next"]["daily"])
    local = nxt.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.weekday() < 5) == (7, 0, True)
    assert nxt > datetime.now(ZoneInfo("UTC"))
    assert [r["edition"] for r in facts["paused"]] == ["daily-2026-11-26"]
    # A later run that finished the edition clears the pause.
    later = store.start_run("schedule", "daily-2026-11-26")
    store.finish_run(later, "ok", "sent 3")
    assert store.paused_runs() == []
    store.close()
