"""The `digest serve` daemon: APScheduler 3.11 runs the whole job on the configured schedule.

Three cron jobs share one in-process lock: the daily edition on ``DIGEST_SCHEDULE`` and the
weekly edition at the same time of day on ``DIGEST_WEEKLY_DAY``, both in ``DIGEST_TIMEZONE``,
and every quarter of an hour the subscribers whose own hour has come (``HOURS_JOB``).
A run first takes a lock in the database named after its edition (a PostgreSQL advisory lock,
or a lease row on SQLite), so a second scheduler started by mistake skips an edition that the
first is running; `digest.pipeline.run` being idempotent makes a later rerun send nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.config import ConfigError, Settings
from digest.errors import DigestError
from digest.logs import event
from digest.models import EditionStatus, Frequency
from digest.periods import edition_key, zone
from digest.pipeline import RunReport, run_scheduled, send_due
from digest.store import Store, new_holder

__all__ = [
    "HOURS_JOB",
    "Daemon",
    "build_due",
    "build_scheduler",
    "daily_trigger",
    "hours_trigger",
    "next_runs",
    "serve",
    "triggers",
    "weekly_trigger",
]

log = logging.getLogger(__name__)

_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # crontab: 0 and 7 = Sunday
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The fire time APScheduler scheduled the running job for (it does not pass it to the job).
_FIRE_TIME: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "digest_fire_time", default=None
)


def _crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3's terms.

    APScheduler 3 counts 0 as Monday where cron counts 0 (and 7) as Sunday, so ``1-5`` would
    silently mean Tuesday to Saturday; numbers (and steps over ``*``) become day names.
    """
    parts = []
    for token in field.lower().split(","):
        base, _, step_text = token.partition("/")
        numeric = base == "*" or base.replace("-", "").isdigit()
        if not numeric or (base == "*" and not step_text):
            parts.append(token)  # names, name ranges and a plain * mean the same in both
            continue
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (int(x) for x in base.split("-", 1))
        else:
            first = last = int(base)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"bad day of week {token!r}")
        parts.extend(_CRON_DAYS[d] for d in range(first, last + 1, step))
    return ",".join(dict.fromkeys(parts))  # Sunday may come twice (0 and 7)


def _fields(settings: Settings) -> list[str]:
    fields = settings.schedule.split()
    if len(fields) != 5:
        raise ConfigError(
            f"DIGEST_SCHEDULE: expected 5 cron fields (minute hour day month weekday), "
            f"got {settings.schedule!r}"
        )
    return fields


def daily_trigger(settings: Settings) -> CronTrigger:
    """The trigger of the daily edition: the crontab ``DIGEST_SCHEDULE`` in the time zone."""
    minute, hour, day, month, weekday = _fields(settings)
    try:
        expr = f"{minute} {hour} {day} {month} {_crontab_weekdays(weekday)}"
        return CronTrigger.from_crontab(expr, timezone=zone(settings))
    except ValueError as exc:
        raise ConfigError(f"DIGEST_SCHEDULE: {exc} (got {settings.schedule!r})") from None


def weekly_trigger(settings: Settings) -> CronTrigger:
    """The weekly edition: the daily schedule's time of day, on ``DIGEST_WEEKLY_DAY``."""
    minute, hour, *_ = _fields(settings)
    day = settings.weekly_day.strip().lower()[:3]
    if day not in _WEEKDAYS:
        raise ConfigError(f"DIGEST_WEEKLY_DAY: expected mon..sun, got {settings.weekly_day!r}")
    try:
        return CronTrigger.from_crontab(f"{minute} {hour} * * {day}", timezone=zone(settings))
    except ValueError as exc:
        raise ConfigError(f"DIGEST_SCHEDULE: {exc} (got {settings.schedule!r})") from None


def hours_trigger() -> CronTrigger:
    """Every quarter of an hour in UTC: each hour of every time zone, Adelaide's :30 too."""
    return CronTrigger(minute="*/15", timezone=UTC)


def triggers(settings: Settings) -> dict[Frequency, CronTrigger]:
    """Both schedules, validated (a bad setting raises ConfigError naming the variable)."""
    return {Frequency.DAILY: daily_trigger(settings), Frequency.WEEKLY: weekly_trigger(settings)}


def next_runs(settings: Settings, now: datetime) -> dict[Frequency, datetime | None]:
    """When each edition fires next after ``now`` (aware), in the schedule's time zone."""
    return {f: t.get_next_fire_time(None, now) for f, t in triggers(settings).items()}


class _FireTimeExecutor(AsyncIOExecutor):
    """AsyncIOExecutor that tells the job which scheduled time it runs for.

    The task APScheduler creates copies the current context, so setting the context variable
    around the submission hands the (coalesced) fire time to exactly that run.
    """

    def _do_submit_job(self, job, run_times):  # APScheduler's signature, untyped there
        token = _FIRE_TIME.set(run_times[-1])
        try:
            super()._do_submit_job(job, run_times)
        finally:
            _FIRE_TIME.reset(token)


# What a job runs: the locked, recorded pipeline run (tests pass a stand-in).
RunFunction = Callable[[Frequency, datetime], RunReport | None]
# What the quarter-hour job runs: send the subscribers whose hour has come.
DueFunction = Callable[[datetime], object]
HOURS_JOB = "own-hours"


class Daemon:
    """The scheduler, its jobs, and the bookkeeping that lets SIGTERM end it cleanly."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        run: RunFunction | None = None,
        due: DueFunction | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.holder = new_holder()
        self._run = run or self._run_pipeline
        # A stand-in run (tests of the edition jobs) comes without the quarter-hour sends.
        self._due = due or (self._send_due if run is None else (lambda now: None))
        self._one_at_a_time = asyncio.Lock()  # daily and weekly may fire at the same minute
        self._in_flight: set[asyncio.Future] = set()
        self.stopping = threading.Event()
        self.scheduler = build_scheduler(settings, self._job)

    def _run_pipeline(self, frequency: Frequency, fire_time: datetime) -> RunReport | None:
        return run_scheduled(
            self.settings, self.store, frequency, fire_time, holder=self.holder,
            stopping=self.stopping,
        )  # fmt: skip

    def _send_due(self, now: datetime) -> None:
        send_due(self.settings, self.store, now, holder=self.holder, stopping=self.stopping)

    async def _job(self, frequency: str) -> None:
        fire_time = _FIRE_TIME.get() or datetime.now(zone(self.settings))
        async with self._one_at_a_time:
            if self.stopping.is_set():
                return
            if frequency == HOURS_JOB:
                call = asyncio.to_thread(self._due, fire_time)
            else:
                call = asyncio.to_thread(self._run, Frequency(frequency), fire_time)
            work = asyncio.ensure_future(call)
            self._in_flight.add(work)
            try:
                # shield: if the scheduler cancels us at shutdown the run still finishes.
                await asyncio.shield(work)
            except Exception as exc:
                event(log, "run.failed", level=logging.ERROR, frequency=frequency,
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            finally:
                self._in_flight.discard(work)

    def start(self, now: datetime | None = None) -> None:
        """Start the scheduler on the running event loop and log when each edition fires.

        An edition of the current period left unfinished (the daemon was stopped mid-send)
        is resumed at once rather than at the next fire time, which belongs to another edition.
        """
        self.scheduler.start()
        now = now or datetime.now(zone(self.settings))
        for frequency in self._unfinished(now):
            event(log, "run.resume", frequency=str(frequency), day=now.date().isoformat())
            self.scheduler.modify_job(f"{frequency}-edition", next_run_time=now)
        for job in self.scheduler.get_jobs():
            event(log, "schedule.next", job=job.id, next_run=job.next_run_time.isoformat())

    def _unfinished(self, now: datetime) -> list[Frequency]:
        today = now.astimezone(zone(self.settings)).date()
        found = []
        for frequency in Frequency:
            edition = self.store.latest_edition(frequency) if self.store is not None else None
            if (
                edition is not None
                and edition.status is not EditionStatus.SENT
                and edition.key == edition_key(frequency, today)
            ):
                found.append(frequency)
        return found

    async def stop(self) -> None:
        """Start no new run, let the one in flight finish, then shut the scheduler down."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.pause()
        if self._in_flight:
            event(log, "serve.stopping", waiting_runs=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def build_scheduler(
    settings: Settings, job: Callable, *, now: datetime | None = None
) -> AsyncIOScheduler:
    """An AsyncIOScheduler with the daily and weekly jobs (not started).

    coalesce: after downtime or a clock jump, the missed fire times make ONE run;
    max_instances=1: a slow run is never overlapped by the next; a run missed while the process
    was down still starts if the process comes back within ``DIGEST_MISFIRE_GRACE`` seconds.
    """
    tz = zone(settings)
    scheduler = AsyncIOScheduler(
        timezone=tz,
        executors={"default": _FireTimeExecutor()},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.misfire_grace,
        },
    )
    now = now or datetime.now(tz)
    grace = timedelta(seconds=settings.misfire_grace)
    for frequency, trigger in triggers(settings).items():
        scheduler.add_job(
            job,
            trigger,
            args=[str(frequency)],
            id=f"{frequency}-edition",
            name=f"{frequency} edition",
            next_run_time=_first_run(trigger, now, grace),
        )
    # Coalesced like the editions, so a clock jump or a sleep makes one catch-up; it runs
    # however late (the newest quarter hour is never older than 15 minutes).
    scheduler.add_job(
        job, hours_trigger(), args=[HOURS_JOB], id=HOURS_JOB, name="own hours",
        misfire_grace_time=None,
    )  # fmt: skip
    return scheduler


def build_due(
    settings: Settings, store: Store, frequency: Frequency, now: datetime
) -> datetime | None:
    """The fire time whose edition is still to build now, for the one-shot `digest run`.

    The latest fire time of the frequency's schedule in the current period (today, or this
    week for the weekly edition) when its edition is not built yet; None otherwise. So a
    timer every 15 minutes builds each edition once, at its time, never before.
    """
    tz = zone(settings)
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency is Frequency.WEEKLY:
        start -= timedelta(days=local.weekday())
    trigger = triggers(settings)[frequency]
    fired, candidate = None, trigger.get_next_fire_time(None, start)
    while candidate is not None and candidate <= now:
        fired = candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
    if fired is None or store.get_edition(edition_key(frequency, fired.astimezone(tz).date())):
        return None
    return fired


def _first_run(trigger: CronTrigger, now: datetime, grace: timedelta) -> datetime | None:
    """The first fire time: the last one missed within the grace time (a restart at 07:05),
    else the next one.

    Without this a daemon restarted just after 07:00 would wait for tomorrow; the lock and the
    pipeline's idempotency make the catch-up harmless if the edition already went out.
    """
    missed = None
    candidate = trigger.get_next_fire_time(None, now - grace)
    while candidate is not None and candidate <= now:
        missed = candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(microseconds=1))
    return missed or candidate


async def serve(settings: Settings, store: Store, *, web: bool = False) -> None:
    """Run the scheduler (and, with ``web``, the web app) until SIGTERM or SIGINT.

    On the first signal no new run starts, the messages in flight finish, the rest of a run
    stays queued, and the process exits 0; a second signal ends it at once. Raises DigestError
    if the web server stops on its own.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server = None
    if web:
        from digest.web.server import make_server  # uvicorn loads only with --web

        server = make_server(settings, store, handle_signals=False)
    web_task = asyncio.create_task(server.serve()) if server else None
    if server and web_task:
        # Bind the port before the first run can start: a port in use ends the process here.
        while not server.started and not web_task.done():
            await asyncio.sleep(0.02)
    daemon = Daemon(settings, store)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, loop, sig, stop)
    daemon.start()
    event(log, "serve.started", holder=daemon.holder, web=web, timezone=settings.timezone,
          schedule=settings.schedule)  # fmt: skip
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *([web_task] if web_task else [])], return_when="FIRST_COMPLETED")
    await daemon.stop()
    web_failed = web_task is not None and web_task.done() and not stop.is_set()
    if server and web_task and not web_task.done():
        server.should_exit = True
        await web_task
    stopped.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if web_failed:
        raise DigestError("the web server stopped unexpectedly; see the log above")
    event(log, "serve.stopped")


def _on_signal(loop: asyncio.AbstractEventLoop, sig: signal.Signals, stop: asyncio.Event) -> None:
    event(log, "serve.signal", signal=sig.name, note="finishing the messages in flight")
    # A second signal gets the default behaviour: an impatient operator can end it at once
    # (rows left in `sending` become `unknown`, never resent blindly).
    for each in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(each)
    stop.set()
