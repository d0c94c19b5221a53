"""The one uvicorn set-up, for `digest web` and `digest serve --web` alike."""

from __future__ import annotations

import contextlib

import uvicorn

from digest.config import Settings
from digest.store import Store
from digest.web.app import create_app

__all__ = ["make_server"]


class _SignalFreeServer(uvicorn.Server):
    """A server that leaves SIGTERM/SIGINT to its host (``digest serve`` owns them)."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        """Install no signal handlers."""
        return contextlib.nullcontext()


def make_server(
    settings: Settings,
    store: Store,
    *,
    host: str | None = None,
    port: int | None = None,
    handle_signals: bool = True,
) -> uvicorn.Server:
    """A uvicorn server for the web app on ``host``:``port`` (default DIGEST_WEB_HOST/PORT).

    ``handle_signals=False`` when another loop owns SIGTERM (the daemon). Our middleware logs
    requests with the tokens redacted, so uvicorn's own access log is off; ``log_config=None``
    lets our handler format and redact uvicorn's other records too. ``port=0`` picks a free
    port. X-Forwarded-For and -Proto are believed only from DIGEST_TRUSTED_PROXIES: anyone
    else could rotate the header to dodge the per-client subscribe limit.
    """
    trusted = settings.trusted_proxies
    config = uvicorn.Config(
        create_app(settings, store),
        host=host or settings.web_host,
        port=settings.web_port if port is None else port,
        access_log=False,
        log_config=None,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
        lifespan="auto",
    )
    return uvicorn.Server(config) if handle_signals else _SignalFreeServer(config)
