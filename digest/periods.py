"""Editions and their periods: the schedule's time zone, today's date there, edition keys.

Every command agrees on "today" (the date in ``DIGEST_TIMEZONE``, not the machine's) and on
the key that names the edition of a day, so a timer, the daemon and a hand-run `digest send`
all build and send the same edition.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import ConfigError, Settings
from digest.models import Frequency

__all__ = ["edition_key", "local_day", "local_today", "zone"]


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
