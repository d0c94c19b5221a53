"""The reader's profile on the preferences page: what its fields offer, and reading them back.

The rules for each value are digest.subscribers.profile's (the CLI and import use the same);
here only what belongs to the form: the blend's steps, the list of time zones, the follows'
one-per-line text boxes and their caps.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from starlette.datastructures import FormData

from digest.models import Subscriber
from digest.subscribers.profile import (
    ProfileError,
    parse_blend,
    parse_empty_days,
    parse_hour,
    parse_timezone,
)

__all__ = [
    "BLEND_STEPS",
    "MAX_FOLLOWS",
    "MAX_NAME",
    "profile_fields",
    "read_names",
    "read_profile",
    "timezones",
]

# "Trending" (0) to "For me" (1) in five steps a person can tell apart; blank is automatic.
BLEND_STEPS = (
    ("0", "Trending"),
    ("0.25", "Mostly trending"),
    ("0.5", "Half and half"),
    ("0.75", "Mostly for me"),
    ("1", "For me"),
)
MAX_FOLLOWS = 50  # authors, and organisations, each
MAX_NAME = 100  # characters of one name
# Old aliases (US/Pacific, Etc/GMT+5 with its inverted sign) still verify when typed in the
# CLI, but the page offers the canonical Area/City names only.
_ALIAS_AREAS = ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/")


@functools.cache
def timezones() -> tuple[str, ...]:
    """The IANA time zones the page lists: Area/City names, sorted."""
    names = zoneinfo.available_timezones()
    return tuple(sorted(n for n in names if "/" in n and not n.startswith(_ALIAS_AREAS)))


def read_names(text: str, what: str) -> tuple[str, ...]:
    """Names typed one per line: trimmed, blank lines dropped, repeats (any case) once."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        name = " ".join(line.split())
        if len(name) > MAX_NAME:
            raise ProfileError(
                f"a name to follow can be at most {MAX_NAME} characters (got {len(name):,})"
            )
        if name:
            names.setdefault(name.casefold(), name)
    if len(names) > MAX_FOLLOWS:
        raise ProfileError(f"follow at most {MAX_FOLLOWS} {what} (got {len(names):,})")
    return tuple(names.values())


def read_profile(form: FormData) -> dict[str, Any]:
    """The profile fields of a submitted preferences form, checked; {} for a form without them.

    Only a form that says it carries them (``profile=1``) changes them, so an older page
    without these fields cannot reset them (an absent checkbox reads as "off").
    """
    if form.get("profile") != "1":
        return {}

    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    return {
        "blend": parse_blend(text("blend")),
        "follow_authors": read_names(text("follow_authors"), "authors"),
        "follow_orgs": read_names(text("follow_orgs"), "organisations"),
        "timezone": parse_timezone(text("timezone")),
        "send_hour": parse_hour(text("send_hour")),
        "empty_days": parse_empty_days(text("empty_days")),
        "followups": form.get("followups") == "on",
    }


def _step(blend: float | None) -> str:
    """The blend as the value of a step, or as its own value when set finer (the CLI)."""
    if blend is None:
        return ""
    for value, _ in BLEND_STEPS:
        if abs(float(value) - blend) < 1e-9:
            return value
    return f"{blend:g}"


def profile_fields(subscriber: Subscriber, default_timezone: str) -> dict[str, Any]:
    """What the page's profile fields show for this subscriber."""
    blend = _step(subscriber.blend)
    steps = list(BLEND_STEPS)
    if blend and blend not in dict(steps):
        steps.append((blend, f"Your own setting ({blend})"))
    return {
        "blend": blend,
        "blend_steps": steps,
        "timezones": timezones(),
        "default_timezone": default_timezone,
        "hours": range(24),
    }
