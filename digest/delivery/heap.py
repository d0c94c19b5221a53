"""The garbage collector's pace while an edition is sent."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["steady_heap"]

# Young collections every 50,000 new container objects instead of 700: a send makes millions
# of short-lived ones (selections, why lines, email pieces), nearly all freed by their
# reference counts, so collecting them that often was work without a find.
_YOUNG_THRESHOLD = 50_000


@contextlib.contextmanager
def steady_heap() -> Iterator[None]:
    """Run a send with the objects alive at its start (modules, tables, the edition) frozen
    out of the collector's scans and young collections rarer; as they were afterwards.

    At 100,000 readers with likes the collector took about a fifth of the selection's CPU
    (bench/readers.py: what likes add 6.97 -> 5.59 s CPU).
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
