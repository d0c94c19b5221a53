"""The baseline of bench/send.py: a plain asyncio SMTP client replaying a spool of messages.

    python bench/smtp_replay.py PORT SPOOL --connections 4             # lock-step
    python bench/smtp_replay.py PORT SPOOL --connections 16 --pipeline # the sink's ceiling

Replays the very bytes the sink received from digest (bench/smtp_sink.py's spool): the same
envelope and the same message data. Before the clock starts every payload is dot-stuffed and
framed, so the clock sees only the wire. Lock-step is what a plain client does: MAIL FROM,
RCPT TO, DATA, each reply awaited, then the data and its reply. ``--pipeline`` writes MAIL,
RCPT and DATA in one go (RFC 2920 style) and reads their replies after, to find how fast the
sink itself can go. Connections share one queue of messages, as digest's pool does. The clock
covers connecting, EHLO, every message and QUIT. Prints one JSON line:
{"messages": n, "seconds": s, "rate": n/s}.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import mmap
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from smtp_sink import read_spool


@dataclass(frozen=True, slots=True)
class Wire:
    """One message ready for the socket: envelope commands and stuffed data."""

    commands: tuple[bytes, ...]  # MAIL FROM, RCPT TO..., DATA
    data: memoryview  # dot-stuffed message ending in CRLF . CRLF


def stuffed(content: bytes) -> bytes:
    """Message data as it goes on the wire (RFC 5321 4.5.2: a leading dot is doubled)."""
    data = content.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def prepare(spool: Path, folder: Path) -> list[Wire]:
    """Every message of the spool framed for the wire, before any clock runs.

    The stuffed data goes to a file mapped into memory (the page cache holds it), so 100,000
    messages of 70 KiB need no 7 GB of this process's own memory.
    """
    frames, sizes = [], []
    with tempfile.TemporaryFile(dir=folder) as wire_file:
        for mail_from, rcpt_tos, content in read_spool(spool):
            data = stuffed(content)
            wire_file.write(data)
            sizes.append(len(data))
            frames.append((
                f"MAIL FROM:<{mail_from}>\r\n".encode(),
                *(f"RCPT TO:<{rcpt}>\r\n".encode() for rcpt in rcpt_tos),
                b"DATA\r\n",
            ))  # fmt: skip
        wire_file.flush()
        if not frames:
            return []
        view = memoryview(mmap.mmap(wire_file.fileno(), 0, access=mmap.ACCESS_READ))
    wires, offset = [], 0
    for commands, size in zip(frames, sizes, strict=True):
        wires.append(Wire(commands, view[offset : offset + size]))
        offset += size
    return wires


class SmtpError(Exception):
    """The sink answered something other than what a successful send gets."""


async def reply(reader: asyncio.StreamReader, expect: bytes) -> None:
    """Read one (possibly multi-line) reply; fail unless its code starts with ``expect``."""
    while True:
        line = await reader.readuntil(b"\r\n")
        if line[3:4] != b"-":
            break
    if not line.startswith(expect):
        raise SmtpError(line.decode(errors="replace").strip())


async def connection(port: int, queue: itertools.count, wires: list[Wire], pipeline: bool) -> int:
    """One connection sending messages from the shared queue until it is empty."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader, b"220")
    writer.write(b"EHLO bench.example.org\r\n")
    await reply(reader, b"250")
    sent = 0
    while (i := next(queue)) < len(wires):
        wire = wires[i]
        if pipeline:
            writer.write(b"".join(wire.commands))
            for _ in wire.commands[:-1]:
                await reply(reader, b"250")
            await reply(reader, b"354")
        else:
            for command in wire.commands[:-1]:
                writer.write(command)
                await reply(reader, b"250")
            writer.write(wire.commands[-1])
            await reply(reader, b"354")
        writer.write(wire.data)
        await writer.drain()
        await reply(reader, b"250")
        sent += 1
    writer.write(b"QUIT\r\n")
    await reply(reader, b"221")
    writer.close()
    await writer.wait_closed()
    return sent


async def replay(port: int, wires: list[Wire], connections: int, pipeline: bool) -> float:
    """Send every message over ``connections`` connections; seconds it took."""
    queue = itertools.count()
    start = time.perf_counter()
    sent = await asyncio.gather(
        *(connection(port, queue, wires, pipeline) for _ in range(connections))
    )
    seconds = time.perf_counter() - start
    assert sum(sent) == len(wires)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("spool", type=Path)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pipeline", action="store_true", help="MAIL, RCPT, DATA in one write")
    args = parser.parse_args()
    wires = prepare(args.spool, args.spool.parent)
    if not wires:
        sys.exit("smtp_replay: the spool is empty")
    seconds = asyncio.run(replay(args.port, wires, args.connections, args.pipeline))
    print(json.dumps({"messages": len(wires), "seconds": seconds, "rate": len(wires) / seconds}))


if __name__ == "__main__":
    main()
