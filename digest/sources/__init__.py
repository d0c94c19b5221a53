"""Where papers come from: one module per source and a small registry.

A source turns one listing (the HF daily list, the arXiv announcement, a file) into Papers,
reporting each record it had to skip. Only this package speaks HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.sources.base import Skipped, Source, SourceResult

if TYPE_CHECKING:
    import httpx

    from digest.config import Settings
    from digest.sources.http import PoliteClient

__all__ = ["SOURCE_NAMES", "Skipped", "Source", "SourceResult", "make_source"]

SOURCE_NAMES = ("hf", "arxiv", "file")


def make_source(
    name: str,
    settings: Settings,
    *,
    client: httpx.Client | PoliteClient | None = None,
    path: Path | str | None = None,
    known: Callable[[Sequence[str]], set[str]] | None = None,
) -> Source:
    """Build the source called ``name`` (hf, arxiv or file) from settings.

    ``client`` lets tests and callers share an httpx client (or a configured PoliteClient);
    ``path`` is the papers file of the ``file`` source (default: DIGEST_PAPERS_FILE);
    ``known(ids)`` names the papers whose arXiv details are stored (``hf`` asks arXiv for the
    rest; pass ``Store.ids_with_categories``).
    """
    if name == "hf":
        from digest.sources.hf import HfSource

        return HfSource(settings, client=client, known=known)
    if name == "arxiv":
        from digest.sources.arxiv import ArxivSource

        return ArxivSource(settings, client=client)
    if name == "file":
        from digest.sources.jsonfile import FileSource

        chosen = path if path is not None else settings.papers_file
        if chosen is None:
            raise DigestError(
                "the file source needs a file: pass --file PATH or set DIGEST_PAPERS_FILE"
            )
        return FileSource(Path(chosen))
    raise DigestError(
        f"unknown source {name!r}: choose from {', '.join(SOURCE_NAMES)} (DIGEST_SOURCES)"
    )
