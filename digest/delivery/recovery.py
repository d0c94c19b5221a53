"""After a crash: a dead run's rows are reported ``unknown`` at once, and stay a failure until resolved.

A run keeps its holder alive (``Store.alive``) and stamps it on the rows it sends, so the next
run can tell at once, without waiting for a timeout, which ``sending`` rows belong to a process
that is gone. Those rows may or may not have reached the server, so they become ``unknown``:
never resent on their own, and every command exits 1 while any are left, until an admin
resends them (``--retry-unknown``) or counts them as sent (``--accept-unknown``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from digest.logs import event
from digest.store import Store

__all__ = ["recover_crashed", "unresolved_unknown"]

log = logging.getLogger(__name__)


def recover_crashed(store: Store, me: str, *, unowned_before: datetime) -> dict[int, int]:
    """Rows a gone holder left ``sending`` become ``unknown``; its runs end ``crashed``.

    Returns how many rows per edition id. ``me`` is this run's holder (alive, not checked).
    Rows in ``sending`` with no holder (written before holders were recorded) are taken as
    crashed once they are older than ``unowned_before``.
    """
    found: dict[int, int] = {}
    holders = set(store.sending_holders()) | set(store.running_holders())
    for holder in sorted(holders - {me}):
        if not store.holder_gone(holder):
            continue
        counts = store.mark_sending_unknown(holder=holder)
        for edition_id, rows in counts.items():
            found[edition_id] = found.get(edition_id, 0) + rows
        unknown = store.holder_unknown(holder)
        store.crash_runs(
            holder,
            f"the process stopped mid-run (killed or crashed); {unknown} deliveries have an "
            "unknown outcome",
        )
        event(log, "send.crashed_run_found", rows=sum(counts.values()), unknown=unknown,
              level=logging.WARNING)  # fmt: skip
    for edition_id, rows in store.mark_sending_unknown(older_than=unowned_before).items():
        found[edition_id] = found.get(edition_id, 0) + rows
    return found


def unresolved_unknown(store: Store) -> str | None:
    """One line naming the deliveries whose outcome is unknown, or None when there are none."""
    counts = store.unknown_counts()
    if not counts:
        return None
    total = sum(counts.values())
    where = ", ".join(f"{key}: {n}" for key, n in counts.items())
    first = next(iter(counts))
    deliveries = "1 delivery has" if total == 1 else f"{total} deliveries have"
    return (
        f"{deliveries} an unknown outcome ({where}) after a crash or a lost "
        f"connection; resend them with `digest send --edition {first} --retry-unknown` or "
        "count them as sent with `--accept-unknown`"
    )
