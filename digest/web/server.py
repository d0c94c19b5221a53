"""The one uvicorn set-up, for `digest web` and `digest serve --web` alike."""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from digest.config import Settings
from digest.errors import DigestError
from digest.store import Store
from digest.web.app import create_app

__all__ = ["WebServer", "listen", "make_server"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port``; DigestError in one line when it cannot be had.

    Bound here rather than by uvicorn, which logs the error and exits 3 (outside 0/1/2).
    A busy port is exit 1, a runtime failure: the other process may go away, and systemd
    restarts the unit (2 would stop it for good).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise DigestError(
            f"cannot listen on {host}:{port}: {reason} (DIGEST_WEB_HOST, DIGEST_WEB_PORT or --port)"
        ) from None


class WebServer(uvicorn.Server):
    """uvicorn on a socket bound up front, its start-up failures turned into DigestError."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, handle_signals: bool) -> None:
        super().__init__(config)
        self.socket = sock
        self.handle_signals = handle_signals

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on the bound socket until told to stop."""
        try:
            with self.socket:
                await super().serve(sockets=[self.socket])
        except SystemExit:  # uvicorn's way to say the app's start-up failed (exit 3)
            raise DigestError("the web server could not start; see the log above") from None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the server gracefully and the command exits 0.

        uvicorn's own handler raises the signal again once it has stopped, so the process
        would end by SIGTERM (status 143, outside 0/1/2). With ``handle_signals=False`` the
        host (``digest serve``) owns the signals.
        """
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def make_server(
    settings: Settings,
    store: Store,
    *,
    host: str | None = None,
    port: int | None = None,
    handle_signals: bool = True,
) -> WebServer:
    """A uvicorn server for the web app on ``host``:``port`` (default DIGEST_WEB_HOST/PORT).

    The port is bound now, so a busy one stops the command before anything starts.
    ``handle_signals=False`` when another loop owns SIGTERM (the daemon). Our middleware logs
    requests with the tokens redacted, so uvicorn's own access log is off; ``log_config=None``
    lets our handler format and redact uvicorn's other records too. ``port=0`` picks a free
    port. X-Forwarded-For and -Proto are believed only from DIGEST_TRUSTED_PROXIES: anyone
    else could rotate the header to dodge the per-client subscribe limit.
    """
    host = host or settings.web_host
    port = settings.web_port if port is None else port
    sock = listen(host, port)
    trusted = settings.trusted_proxies
    config = uvicorn.Config(
        create_app(settings, store),
        host=host,
        port=sock.getsockname()[1],
        access_log=False,
        log_config=None,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
        lifespan="auto",
    )
    return WebServer(config, sock, handle_signals)
