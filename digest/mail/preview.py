"""Looking at an email before it goes out: headless-Chromium screenshots and a live server.

Used by `digest preview`; the browser tests launch Chromium with the same settings.
"""

from __future__ import annotations

import errno
import html
import http.server
from collections.abc import Callable
from pathlib import Path

from digest.errors import DigestError
from digest.models import Message

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SCREEN_WIDTHS", "make_preview_server", "screenshot"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREEN_WIDTHS = (375, 600)


def screenshot(page_html: str, out: Path, *, dark: bool = False) -> Path:
    """PNG of ``page_html`` at phone and desktop widths side by side (headless Chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1040, "height": 800})
            page.emulate_media(color_scheme="dark" if dark else "light")
            # Offline preview: no network, images show their alt text.
            page.route("**/*", lambda route: route.abort())
            frames = "".join(
                f'<iframe style="width:{w}px;border:1px solid #888;margin:8px;vertical-align:top"'
                f' srcdoc="{html.escape(page_html)}"></iframe>'
                for w in SCREEN_WIDTHS
            )
            page.set_content(f"<body style='margin:0;background:#777'>{frames}</body>")
            page.evaluate(
                "for (const f of document.querySelectorAll('iframe'))"
                " f.style.height = f.contentDocument.documentElement.scrollHeight + 'px'"
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return out


_RELOAD = (
    "<script>let v=null;setInterval(async()=>{const r=await fetch('/version');"
    "const t=await r.text();if(v!==null&&t!==v)location.reload();v=t},1000)</script>"
)


def make_preview_server(
    build: Callable[[], tuple[Message, str]], port: int
) -> http.server.ThreadingHTTPServer:
    """A local HTTP server showing ``build()``'s message; rebuilt when a template changes.

    ``build`` returns ``(message, version)``; the page reloads itself when version changes.
    The reload script is added to the served page only, never to an email.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API names it so
            try:
                message, version = build()
            except DigestError as exc:
                message, version = None, str(exc)
                body, kind = f"<pre>{html.escape(str(exc))}</pre>{_RELOAD}", "text/html"
            if message is not None and self.path.startswith("/text"):
                body, kind = message.text, "text/plain"
            elif message is not None and self.path.startswith("/version"):
                body, kind = version, "text/plain"
            elif message is not None:
                body, kind = message.html.replace("</body>", _RELOAD + "</body>"), "text/html"
            elif self.path.startswith("/version"):
                body, kind = version, "text/plain"
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise DigestError(f"cannot listen on 127.0.0.1:{port}: {reason} (choose --port)") from None
