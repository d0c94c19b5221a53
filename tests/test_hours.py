"""Each subscriber's own hour (issue 16 item 3): once per edition, at their hour, all year.

The clock is controlled: the test steps through simulated time a quarter of an hour at a
time and does at each step what `digest run` (every 15 minutes) and the daemon's quarter-hour
job do: build the edition once DIGEST_SCHEDULE's time has come, then send whoever is due.
Emails go to the real file outbox; each one is stamped with the simulated time it appeared.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from test_schedule import FakeClock, make_settings, write_papers

from digest import pipeline, schedule
from digest.models import Frequency, Subscriber
from digest.periods import release_time
from digest.store import HourGroup, Store

QUARTER = timedelta(minutes=15)
# Who reads when: four time zones at 07:00, plus the two worst hours of the year (02:00 does
# not exist in Los Angeles on 8 March and happens twice in Berlin on 25 October).
READERS = {
    "la@example.org": ("America/Los_Angeles", 7),
    "berlin@example.org": ("Europe/Berlin", 7),
    "tokyo@example.org": ("Asia/Tokyo", 7),
    "adelaide@example.org": ("Australia/Adelaide", 7),
    "la-night@example.org": ("America/Los_Angeles", 2),
    "berlin-night@example.org": ("Europe/Berlin", 2),
}
DEFAULT = "default@example.org"  # chose nothing: DIGEST_SCHEDULE in DIGEST_TIMEZONE


class Simulation:
    """A database, subscribers, and the quarter-hour steps of `digest run` on a fake clock."""

    def __init__(self, tmp_path: Path, **overrides: object) -> None:
        # Built every day at 06:00 Berlin time; the readers' hours are their own.
        self.settings = make_settings(
            tmp_path, schedule="0 6 * * *", timezone="Europe/Berlin", **overrides
        )
        self.store = Store(self.settings.database_url)
        self.store.migrate()
        self.store.add_subscriber(Subscriber(email=DEFAULT))
        for address, (tz, hour) in READERS.items():
            self.store.add_subscriber(Subscriber(email=address, timezone=tz, send_hour=hour))
        self.outbox = self.settings.outbox
        self.seen: set[Path] = set()
        self.received: dict[str, list[tuple[str, datetime]]] = {}

    def step(self, now: datetime) -> None:
        """One `digest run` at ``now``: build if the schedule's time has come, send the due."""
        fire = schedule.build_due(self.settings, self.store, Frequency.DAILY, now)
        if fire is not None:
            write_papers(self.settings.papers_file, fire.date())
            pipeline.run_scheduled(self.settings, self.store, Frequency.DAILY, fire, holder="t")
        pipeline.send_due(self.settings, self.store, now, holder="t")
        for path in sorted(self.outbox.rglob("*.eml")):
            if path not in self.seen:
                self.seen.add(path)
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                self.received.setdefault(str(message["To"]), []).append((path.parent.name, now))

    def run(self, start: datetime, end: datetime, skip: tuple[datetime, datetime] | None = None):
        """Step every 15 minutes from ``start`` to ``end``; nothing runs inside ``skip``."""
        now = start
        while now <= end:
            if not (skip and skip[0] < now < skip[1]):
                self.step(now)
            now += QUARTER

    def released(self) -> dict[str, datetime]:
        """Each edition built, and the time it was released for the readers' hours."""
        return {
            e.key: release_time(self.settings, e.date, e.created_at)
            for e in self.store.list_editions()
        }


def _local_slot(day: date, tz: ZoneInfo, hour: int) -> datetime:
    """Independent of the code under test: the first quarter hour of ``day`` at or past
    ``hour``:00 local, found by walking the day in real UTC steps."""
    moment = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC) - timedelta(hours=3)
    while True:
        local = moment.astimezone(tz)
        if local.date() == day and local.hour >= hour:
            return moment
        moment += QUARTER


@pytest.mark.parametrize(
    "change",
    [
        date(2026, 3, 8),  # US: spring forward (02:00 -> 03:00)
        date(2026, 11, 1),  # US: fall back (02:00 -> 01:00)
        date(2026, 3, 29),  # EU: spring forward (02:00 -> 03:00)
        date(2026, 10, 25),  # EU: fall back (03:00 -> 02:00)
        date(2026, 4, 5),  # Adelaide: fall back (03:00 -> 02:00)
        date(2026, 10, 4),  # Adelaide: spring forward (02:00 -> 03:00)
    ],
)
def test_each_reader_gets_each_edition_once_at_their_hour_across_dst(
    tmp_path: Path, change: date
) -> None:
    sim = Simulation(tmp_path)
    start = datetime.combine(change - timedelta(days=2), datetime.min.time(), UTC)
    end = start + timedelta(days=4, hours=23, minutes=45)
    sim.run(start, end)
    released = sim.released()
    assert len(released) == 5  # one edition per Berlin day, built at 06:00

    got = sorted(key for key, _ in sim.received[DEFAULT])
    assert got == sorted(released)  # the default reader: at the build, each edition once
    for key, at in sim.received[DEFAULT]:
        assert at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "06:00", key

    for address, (tz_name, hour) in READERS.items():
        tz = ZoneInfo(tz_name)
        mails = sim.received[address]
        keys = [key for key, _ in mails]
        assert len(keys) == len(set(keys)), (address, mails)  # never an edition twice
        last_slot = max(
            s
            for d in range(-1, 7)
            if (s := _local_slot(start.date() + timedelta(d), tz, hour)) <= end
        )
        due = sorted(k for k, at in released.items() if at <= last_slot)
        assert sorted(keys) == due, address  # every edition released before their last hour
        for key, at in mails:
            # At their hour, to the quarter hour: the first moment of their local day past it.
            assert at == _local_slot(at.astimezone(tz).date(), tz, hour), (address, key, at)


def test_a_two_day_clock_jump_sends_one_catch_up_email_per_reader(tmp_path: Path) -> None:
    sim = Simulation(tmp_path)
    start = datetime(2026, 10, 23, tzinfo=UTC)
    # The machine sleeps from Saturday 12:00 to Monday 12:00 UTC (or the clock jumps).
    asleep = (datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC))
    sim.run(start, datetime(2026, 10, 27, 23, 45, tzinfo=UTC), skip=asleep)
    released = sim.released()
    # Sunday's and Monday's 06:00 builds were missed: Monday's run at wake-up builds one
    # edition holding both days' papers (Sunday's edition is never built).
    assert sorted(released) == [
        "daily-2026-10-23", "daily-2026-10-24", "daily-2026-10-26", "daily-2026-10-27"
    ]  # fmt: skip
    wake = asleep[1]
    for address in [DEFAULT, *READERS]:
        keys = [key for key, _ in sim.received[address]]
        assert len(keys) == len(set(keys)), address
        at_wake = [key for key, at in sim.received[address] if at == wake]
        # Whoever's hour passed while asleep gets the newest edition once, at wake-up.
        assert len(at_wake) <= 1, address
    assert [k for k, at in sim.received[DEFAULT] if at == wake] == ["daily-2026-10-26"]
    # Los Angeles' 07:00 on Monday comes after the wake-up: on time, not early.
    la = [(k, at) for k, at in sim.received["la@example.org"] if k == "daily-2026-10-26"]
    assert la == [("daily-2026-10-26", datetime(2026, 10, 26, 14, tzinfo=UTC))]


def test_a_restart_mid_send_leaves_no_reader_with_two_copies(tmp_path: Path) -> None:
    sim = Simulation(tmp_path)
    sim.run(datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 26, 23, 45, tzinfo=UTC))
    # Two processes (a timer and a daemon, or a restart) step over the same hours again.
    again = Simulation.__new__(Simulation)
    again.__dict__.update(sim.__dict__)
    again.store = Store(sim.settings.database_url)
    again.run(datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, 23, 45, tzinfo=UTC))
    for address in [DEFAULT, *READERS]:
        keys = [key for key, _ in again.received[address]]
        assert len(keys) == len(set(keys)), address


def test_the_daemon_runs_the_quarter_hour_job_once_after_a_clock_jump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, timezone="Europe/Berlin")
    clock = FakeClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", clock.datetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", clock.datetime)
    monkeypatch.setattr(schedule, "datetime", clock.datetime)
    calls: list[datetime] = []

    async def scenario() -> datetime:
        daemon = schedule.Daemon(settings, store=None, run=lambda f, t: None, due=calls.append)  # type: ignore[arg-type]
        daemon.start()
        clock.now = datetime(2026, 11, 25, 7, 10, tzinfo=UTC)  # two days later
        daemon.scheduler.wakeup()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if calls:
                break
        await asyncio.sleep(0.1)  # room for a second, wrong, call
        nxt = daemon.scheduler.get_job(schedule.HOURS_JOB).next_run_time
        await daemon.stop()
        return nxt

    nxt = asyncio.run(scenario())
    # 192 missed quarter hours make one call, for the latest of them.
    assert calls == [datetime(2026, 11, 25, 7, 0, tzinfo=UTC)]
    assert nxt == datetime(2026, 11, 25, 7, 15, tzinfo=UTC)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_due_groups_are_queued_once_on_both_databases(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    overrides = {"database_url": request.getfixturevalue("pg_url")} if backend != "sqlite" else {}
    sim = Simulation(tmp_path, **overrides)
    store = sim.store
    groups = {(g.timezone, g.send_hour): g.count for g in store.hour_groups(Frequency.DAILY)}
    assert groups[(None, None)] == 1 and groups[("America/Los_Angeles", 7)] == 1
    assert len(groups) == len(READERS) + 1
    # Three days over the US autumn change, on this database, up to 21:45 UTC.
    sim.run(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 2, 21, 45, tzinfo=UTC))
    for address in [DEFAULT, *READERS]:
        keys = [key for key, _ in sim.received[address]]
        assert len(keys) == len(set(keys)) >= 2, address
    edition = store.get_edition("daily-2026-11-02")
    tokyo = [HourGroup("Asia/Tokyo", 7)]
    # Tokyo's next 07:00 is 22:00 UTC: until it comes, no row is queued for them.
    assert store.count_lacking(edition.id, Frequency.DAILY, tokyo) == 1
    assert store.queue_groups(edition.id, Frequency.DAILY, tokyo) == 1
    assert store.queue_groups(edition.id, Frequency.DAILY, tokyo) == 0  # never twice
    assert store.count_lacking(edition.id, Frequency.DAILY, tokyo) == 0
    store.close()


def test_status_shows_who_is_due_now_and_in_each_coming_hour(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.models import Edition

    sim = Simulation(tmp_path)
    store = sim.store
    now = datetime.now(UTC)
    # An edition of two days ago: every reader's hour has passed since, none has had it.
    day = (now - timedelta(days=2)).astimezone(ZoneInfo("Europe/Berlin")).date()
    edition = store.save_edition(Edition(f"daily-{day}", Frequency.DAILY, day, ()))
    env = {
        "DIGEST_DATABASE_URL": sim.settings.database_url,
        "DIGEST_SCHEDULE": "0 6 * * *",
        "DIGEST_TIMEZONE": "Europe/Berlin",
    }
    result = CliRunner().invoke(cli, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    import json

    facts = json.loads(result.output)
    assert facts["due_now"] == len(READERS) + 1
    # Every reader's next hour is within a day: each counted once, in the right hour.
    assert sum(h.get("daily", 0) for h in facts["coming_hours"]) == len(READERS) + 1
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    nxt = tokyo.replace(hour=7, minute=0, second=0, microsecond=0)
    nxt = nxt if nxt > tokyo else nxt + timedelta(days=1)
    hour = nxt.astimezone(ZoneInfo("Europe/Berlin")).isoformat(timespec="minutes")
    assert any(h["hour"] == hour and h["daily"] >= 1 for h in facts["coming_hours"]), hour
    store.queue_groups(edition.id, Frequency.DAILY, [HourGroup("Asia/Tokyo", 7)])
    text = CliRunner().invoke(cli, ["status"], env=env).output
    assert f"Due now (their hour has passed, the newest edition not sent): {len(READERS)}" in text
    assert "Sending hours, next 24 h:" in text
    store.close()


def test_digest_run_every_15_minutes_builds_once_and_sends_whoever_is_due(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner
    from conftest import TEST_SECRET

    from digest.cli import cli

    now = datetime.now(UTC)
    settings = make_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    store.add_subscriber(Subscriber(email=DEFAULT))
    # Their hour is this hour in UTC: it has come. The next hour's has not (at 23:xx it would
    # be tomorrow's 00:00, whose slot today has passed: then it is not checked).
    store.add_subscriber(Subscriber(email="now@example.org", timezone="UTC", send_hour=now.hour))
    later = (now.hour + 1) % 24
    store.add_subscriber(Subscriber(email="later@example.org", timezone="UTC", send_hour=later))
    write_papers(settings.papers_file, now.date())
    env = {
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_OUTBOX": str(settings.outbox),
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_FROM": "digest <digest@example.org>",
        "DIGEST_SOURCES": "file",
        "DIGEST_PAPERS_FILE": str(settings.papers_file),
        "DIGEST_SCHEDULE": "0 0 * * *",  # today's fire time has always passed
    }
    runner = CliRunner()
    first = runner.invoke(cli, ["run"], env=env)
    assert first.exit_code == 0, first.output
    assert "collect file: fetched 3" in first.output
    second = runner.invoke(cli, ["run"], env=env)  # 15 minutes later, say
    assert second.exit_code == 0, second.output
    assert "collect" not in second.output  # built once: no second collect
    key = f"daily-{now.date().isoformat()}"
    to = sorted(
        str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"])
        for p in (settings.outbox / key).glob("*.eml")
    )
    expected = [DEFAULT, "now@example.org"]
    if later == 0:  # 23:xx UTC: "later" means tomorrow 00:00, whose today's slot has passed
        expected.append("later@example.org")
    assert to == sorted(expected)
    # The weekly edition's time (Monday 00:00) has come this week too: built once, as well.
    year, week, _ = now.date().isocalendar()
    assert sorted(e.key for e in store.list_editions()) == [key, f"weekly-{year}-W{week:02d}"]
    store.close()
