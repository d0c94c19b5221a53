"""Editions and their periods: the schedule's time zone, today's date there, edition keys.

Every command agrees on "today" (the date in ``DIGEST_TIMEZONE``, not the machine's) and on
the key that names the edition of a day, so a timer, the daemon and a hand-run `digest send`
all build and send the same edition.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import ConfigError, Settings
from digest.models import Frequency

__all__ = [
    "edition_key",
    "local_day",
    "local_today",
    "release_time",
    "schedule_time",
    "slot_after",
    "slot_before",
    "zone",
    "zone_named",
]


def zone(settings: Settings) -> ZoneInfo:
    """The schedule's time zone; ConfigError naming DIGEST_TIMEZONE when it is unknown."""
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"DIGEST_TIMEZONE: unknown time zone {settings.timezone!r} (e.g. Europe/Berlin)"
        ) from None


def local_day(settings: Settings, moment: datetime) -> date:
    """The date ``moment`` (aware) falls on in the schedule's time zone."""
    return moment.astimezone(zone(settings)).date()


def local_today(settings: Settings) -> date:
    """Today's date in the schedule's time zone: the day every command's edition is for."""
    return datetime.now(zone(settings)).date()


def edition_key(frequency: Frequency, day: date) -> str:
    """The unique key of the edition of ``frequency`` covering ``day``."""
    if frequency is Frequency.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"weekly-{year}-W{week:02d}"
    return f"daily-{day.isoformat()}"


def zone_named(name: str | None, settings: Settings) -> ZoneInfo:
    """The time zone ``name`` (a subscriber's own), else the schedule's; bad names fall back.

    A name the zone database no longer knows must not stop everyone's sending: that
    subscriber is served in DIGEST_TIMEZONE (names are validated when they are stored).
    """
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return zone(settings)


def schedule_time(settings: Settings) -> tuple[int, int] | None:
    """The time of day of ``DIGEST_SCHEDULE`` as (hour, minute); None for a schedule that
    fires at many hours or minutes (``* * * * *``), which has no single sending time."""
    fields = settings.schedule.split()
    if len(fields) != 5:
        return None
    minute, hour = fields[0].split(",")[0], fields[1].split(",")[0]
    if not (minute.isdigit() and hour.isdigit()):
        return None
    return int(hour), int(minute)


def slot_before(now: datetime, tz: ZoneInfo, hour: int, minute: int = 0) -> datetime:
    """The latest local ``hour:minute`` in ``tz`` at or before ``now`` (aware, in UTC).

    One per local day, whatever daylight saving does: a time that does not exist that day
    (02:30 when clocks spring from 02:00 to 03:00) is the moment the gap ends, and a time
    that happens twice (01:30 when they fall back) is its first occurrence.
    """
    day = now.astimezone(tz).date()
    for back in range(3):
        slot = _local(day - timedelta(days=back), tz, hour, minute)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a local day is at most 26 hours long")


def slot_after(now: datetime, tz: ZoneInfo, hour: int, minute: int = 0) -> datetime:
    """The first local ``hour:minute`` in ``tz`` strictly after ``now`` (see slot_before)."""
    day = now.astimezone(tz).date()
    for ahead in range(-1, 3):
        slot = _local(day + timedelta(days=ahead), tz, hour, minute)
        if slot > now:
            return slot
    raise AssertionError("unreachable: a local day is at most 26 hours long")


def _local(day: date, tz: ZoneInfo, hour: int, minute: int) -> datetime:
    """``day`` at ``hour:minute`` in ``tz`` as a UTC instant (fold=0: PEP 495's first or
    pre-gap reading, which puts a skipped time at the end of the gap)."""
    naive = datetime.combine(day, time(hour, minute))
    return naive.replace(tzinfo=tz).astimezone(UTC)


def release_time(settings: Settings, edition_day: date, created_at: datetime | None) -> datetime:
    """When an edition counts as built for the subscribers' own hours.

    The schedule's time on the edition's day, so the edition the 07:00 run builds is the one
    for 07:00 however long collecting took; the moment it was stored when the schedule has
    no single time of day. A subscriber at hour H gets the newest edition released by H.
    """
    at = schedule_time(settings)
    if at is None:
        return created_at or _local(edition_day, zone(settings), 0, 0)
    return _local(edition_day, zone(settings), *at)
