"""The SMTP sink of bench/send.py: an aiosmtpd server in its own process, one for both sides.

    python bench/smtp_sink.py PORT      # 0: a free port of its choosing

Prints ``ready PORT`` once it listens on 127.0.0.1:PORT, then obeys one command per stdin line and
answers each with one JSON line on stdout:

    record        keep every message from now on (envelope and bytes, in memory)
    count         keep nothing from now on, only count
    stats         {"messages": n, "bytes": b, "recipients": r} since the last record/count
    dump PATH     write the kept messages to PATH (see `write_spool`) and forget them

Counting costs the same on both sides; recording only adds a list append per message, so
the side that is recorded (digest) is not slowed by it. The spool is written between runs.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class SinkHandler:
    """Accepts every message; counts it and, while recording, keeps it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recording = False
        self.kept: list[tuple[str, list[str], bytes]] = []
        self.messages = self.bytes = self.recipients = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += len(content)
            if self.recording:
                self.kept.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 OK"

    def reset(self, recording: bool) -> None:
        """Start counting afresh; keep messages from now on when ``recording``."""
        with self.lock:
            self.recording, self.kept = recording, []
            self.messages = self.bytes = self.recipients = 0


def write_spool(path: Path, messages: list[tuple[str, list[str], bytes]]) -> None:
    """Messages as a spool: per message a JSON header line (from, to, size), then the bytes.

    The bytes are the message as the sink got it: dot-stuffing undone, CRLF line ends.
    """
    with path.open("wb") as out:
        for mail_from, rcpt_tos, content in messages:
            header = {"from": mail_from, "to": rcpt_tos, "size": len(content)}
            out.write(json.dumps(header).encode() + b"\n")
            out.write(content)


def read_spool(path: Path) -> list[tuple[str, list[str], bytes]]:
    """The messages of a spool written by `write_spool`, in order."""
    messages = []
    with path.open("rb") as spool:
        while header := spool.readline():
            meta = json.loads(header)
            messages.append((meta["from"], meta["to"], spool.read(meta["size"])))
    return messages


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
                handler.reset(recording=command == "record")
                answer: dict = {"ok": True}
            elif command == "stats":
                with handler.lock:
                    answer = {"messages": handler.messages, "bytes": handler.bytes,
                              "recipients": handler.recipients}  # fmt: skip
            elif command == "dump":
                with handler.lock:
                    kept, handler.kept = handler.kept, []
                write_spool(Path(arg), kept)
                answer = {"messages": len(kept)}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        controller.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
