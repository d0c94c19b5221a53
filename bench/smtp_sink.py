"""The SMTP sink of bench/send.py: an aiosmtpd server in its own process, one for both sides.

    python bench/smtp_sink.py PORT      # 0: a free port of its choosing

Prints ``ready PORT`` once it listens on 127.0.0.1:PORT, then obeys one command per stdin line and
answers each with one JSON line on stdout:

    record PATH   from now on, append every message to the spool PATH (see `write_message`)
    count         from now on only count (closes the spool)
    stats         {"messages": n, "bytes": b, "recipients": r} since the last record/count

Recording writes each message to the page cache as it arrives (tens of microseconds against
the milliseconds the sink spends parsing it), so memory stays flat at 100,000 messages.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aiosmtpd.controller import Controller


class SinkHandler:
    """Accepts every message; counts it and, while recording, appends it to a spool."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spool: BinaryIO | None = None
        self.messages = self.bytes = self.recipients = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += len(content)
            if self.spool is not None:
                write_message(self.spool, envelope.mail_from, envelope.rcpt_tos, content)
        return "250 OK"

    def reset(self, spool: Path | None) -> None:
        """Start counting afresh; append messages to ``spool`` from now on when given."""
        with self.lock:
            if self.spool is not None:
                self.spool.close()
            self.spool = spool.open("wb") if spool else None
            self.messages = self.bytes = self.recipients = 0


def write_message(spool: BinaryIO, mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
    """One message of a spool: a JSON header line (from, to, size), then the bytes.

    The bytes are the message as the sink got it: dot-stuffing undone, CRLF line ends.
    """
    header = {"from": mail_from, "to": list(rcpt_tos), "size": len(content)}
    spool.write(json.dumps(header).encode() + b"\n")
    spool.write(content)


def read_spool(path: Path) -> Iterator[tuple[str, list[str], bytes]]:
    """The messages of a spool, in order, one at a time."""
    with path.open("rb") as spool:
        while header := spool.readline():
            meta = json.loads(header)
            yield meta["from"], meta["to"], spool.read(meta["size"])


def serve(port: int) -> None:
    """Run the sink until stdin closes."""
    if port == 0:
        with socket.socket() as probe:  # aiosmtpd's Controller cannot listen on port 0 itself
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    print(f"ready {port}", flush=True)
    try:
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command in ("record", "count"):
                handler.reset(Path(arg) if command == "record" else None)
                answer: dict = {"ok": True}
            elif command == "stats":
                with handler.lock:
                    answer = {"messages": handler.messages, "bytes": handler.bytes,
                              "recipients": handler.recipients}  # fmt: skip
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        controller.stop()
        handler.reset(None)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
