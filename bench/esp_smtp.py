"""Benchmark: the fake ESP on the meta path against bare aiosmtpd, CPU per message, round by round.

What a platform does: every message carries its own recipient and a unique `X-CleverTap_META`, so
the fake ESP takes its meta path (header extraction, outcome draw, spool, one callback event per
message). Two load modes: connections reused (several messages per session) and one connection
per message. Servers run in processes of their own: the fake ESP (`mixed` scenario) posting to a
callback sink in a third process, bare aiosmtpd (a handler that accepts DATA), and, where
installed, Postfix's `smtp-sink` and maildev (each skipped with the reason printed when absent).
The load generator is this process (an asyncio SMTP client).

maildev is found as `--maildev PATH`, else `maildev` on PATH, else in the folder the README's
install command uses (`npm install --prefix ~/.cache/bounceback-bench maildev`). It runs with its
web interface disabled (`--disable-web`: no web server, API or UI to update per message), its
default in-memory store, and TMPDIR set to the bench's temporary folder, where it writes each
message's `.eml` (removed with that folder).

Before the rounds each server takes `--warmup` messages per mode that are not counted: maildev runs
on Node.js, whose JIT compiles its hot code during its first messages, and a cold first round would
flatter the fake ESP. Rounds interleave the servers (A B A B ...). A fake ESP round counts only
once every callback of that round has reached the sink and each echoed meta equals, byte for byte,
a meta that was sent. The figure is server CPU per message (from /proc: steadier than wall time on
a shared machine), the fake ESP's until its callbacks are delivered. Reports min / median / max of
the wall and CPU ratios per mode, messages/s per server, the load generator's CPU per message (it
shares the 2 cores, so it can set the pace), the fake ESP's throughput over maildev's (the issue's
target: at least 3) and maildev's CPU per message over the fake ESP's, each server's memory, and
last `ratio=<median CPU ratio bare / fake ESP, worst mode>`: at or above 1.0 means the fake ESP
costs no more CPU per message than bare aiosmtpd.

Run: `.venv/bin/python bench/esp_smtp.py [--rounds 5 --messages 5000 --sessions 20]
[--maildev PATH]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _procs import cpu_seconds, python, rss_mb, spread, start, start_on_port, stop

BARE_SERVER = """
import threading
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

class Bare(Controller):
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        import socket
        with socket.create_connection((self.hostname, self.port), 1.0) as sock:
            sock.recv(1024)

controller = Bare(Handler(), hostname="127.0.0.1", port=0)
controller.start()
print(f"bare aiosmtpd listening on 127.0.0.1:{controller.port}", flush=True)
threading.Event().wait()
"""

# Bare aiosmtpd saying PIPELINING in its EHLO reply, as Postfix and the fake ESP do (a handler
# hook; how it reads commands is unchanged): the sink for benches of the sender, which pipelines.
PIPELINING_SERVER = BARE_SERVER.replace(
    """        return "250 OK"
""",
    """        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]
""",
)
assert "PIPELINING" in PIPELINING_SERVER

SINK_SERVER = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

metas = []
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, doc):
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        start = int(self.path.rpartition("=")[2] or 0)
        with lock:
            self.reply({"count": len(metas), "metas": metas[start:]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        events = [event for group in body["events"].values() for event in group]
        with lock:
            metas.extend(event.get("meta") for event in events)
        self.reply({"TOTAL_EVENTS": len(events), "PROCESSED_EVENTS": len(events),
                    "UNPROCESSED_EVENTS": []})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"callback sink listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""

SENDER = "campaigns@platform.example"
MAILDEV_INSTALL = "npm install --prefix ~/.cache/bounceback-bench maildev"
MAILDEV_CACHED = Path.home() / ".cache/bounceback-bench/node_modules/.bin/maildev"


def meta(index: int, run: int) -> str:
    """A realistic meta, unique per message and round, so a late callback cannot count twice."""
    email = f"user{index}.r{run}@example.com"
    sent_at = 1730714617 + index
    message_id = -(17000000 + run * 100000 + index)
    return f"{email}|1568798080|{sent_at}|20241104|{index % 3}|wzrk_default|{message_id}|"


def message(index: int, run: int, size: int) -> tuple[str, bytes]:
    value = meta(index, run)
    email = value.partition("|")[0]
    head = (
        f"From: Campaigns <{SENDER}>\r\nTo: {email}\r\nSubject: Offer {index}\r\n"
        f"Date: Mon, 04 Nov 2024 10:03:37 +0000\r\nMessage-ID: <{run}.{index}@platform.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"X-CleverTap_META: {value}\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return email, head + line * max(1, (size - len(head)) // len(line))


def header_meta(data: bytes) -> str:
    return data.split(b"X-CleverTap_META: ", 1)[1].split(b"\r\n", 1)[0].decode()


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line.startswith(code):
            raise RuntimeError(f"expected {code!r}, got {line!r}")
        if line[3:4] != b"-":
            return


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO load.platform.example\r\n")
    await _expect(reader, b"250")
    return reader, writer


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"QUIT\r\n")
    await _expect(reader, b"221")
    writer.close()
    await writer.wait_closed()


async def _send(reader, writer, email: str, data: bytes) -> None:
    writer.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
    await _expect(reader, b"250")
    writer.write(f"RCPT TO:<{email}>\r\n".encode())
    await _expect(reader, b"250")
    writer.write(b"DATA\r\n")
    await _expect(reader, b"354")
    writer.write(data + b".\r\n")
    await _expect(reader, b"250")


async def _session(port: int, messages: list[tuple[str, bytes]], reuse: bool) -> None:
    if reuse:
        reader, writer = await _open(port)
        for email, data in messages:
            await _send(reader, writer, email, data)
        await _close(reader, writer)
        return
    for email, data in messages:
        reader, writer = await _open(port)
        await _send(reader, writer, email, data)
        await _close(reader, writer)


def drive(port: int, messages: list[tuple[str, bytes]], sessions: int, reuse: bool) -> float:
    """Send every message over `sessions` clients; seconds from first connect to last 250."""

    async def run() -> None:
        await asyncio.gather(
            *(_session(port, messages[i::sessions], reuse) for i in range(sessions))
        )

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


class Sink:
    def __init__(self) -> None:
        self.process, port = start([python(), "-c", SINK_SERVER])
        self.url = f"http://127.0.0.1:{port}/callback"
        self.seen = 0

    def drain(self, expected: set[str], timeout: float) -> None:
        """Wait for this round's callbacks; every echoed meta must be one that was sent."""
        pending = set(expected)
        deadline = time.monotonic() + timeout
        while pending:
            with urllib.request.urlopen(f"{self.url}?from={self.seen}", timeout=10) as reply:
                doc = json.loads(reply.read())
            self.seen += len(doc["metas"])
            stray = [m for m in doc["metas"] if m not in pending]
            if stray:
                raise SystemExit(f"callback meta not sent in this round (or twice): {stray[0]!r}")
            pending.difference_update(doc["metas"])
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(pending)} callbacks missing after {timeout} s")
            if pending:
                time.sleep(0.05)


def one_batch(
    label: str, server: tuple, sink: Sink, batch: list[tuple[str, bytes]], args, reuse: bool
) -> tuple[float, float, float]:
    """Wall seconds of the SMTP exchange, the server's and the load generator's CPU seconds.

    The fake ESP's batch ends when its callbacks are drained and checked, so its CPU includes them.
    The load generator's CPU shows when it, not the server, sets the pace (2 cores shared by all).
    """
    process, port = server
    before, client = cpu_seconds(process.pid), time.process_time()
    wall = drive(port, batch, args.sessions, reuse)
    client = time.process_time() - client
    if label == "fake ESP":
        sink.drain({header_meta(data) for _, data in batch}, args.callback_timeout)
    return wall, cpu_seconds(process.pid) - before, client


def find_maildev(option: str | None) -> str | None:
    """maildev's command: `--maildev PATH`, else `maildev` on PATH, else the install folder.

    A path the operator names must be an executable file (one line, exit 2 if not); a looked-up
    maildev may be absent, and is then skipped with the reason printed.
    """
    if option is not None:
        path = Path(option).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            print(
                f"--maildev {option}: no executable file there (install: {MAILDEV_INSTALL})",
                file=sys.stderr,
            )
            raise SystemExit(2)
        return str(path)
    on_path = shutil.which("maildev")
    if on_path:
        return on_path
    return str(MAILDEV_CACHED) if os.access(MAILDEV_CACHED, os.X_OK) else None


def servers(folder: Path, sink: Sink, maildev: str | None) -> dict[str, tuple]:
    found = {}
    found["bare aiosmtpd"] = start([python(), "-c", BARE_SERVER])
    command = [
        python(), "-c", "from simulator.esp.cli import esp; esp()",
        "--smtp-port=0", "--tls=none", "--scenario=mixed", f"--callback-url={sink.url}",
        f"--spool={folder / 'spool.sqlite3'}", "--batch-delay=0.2",
    ]  # fmt: skip
    found["fake ESP"] = start(command)
    smtp_sink = shutil.which("smtp-sink") or shutil.which("/usr/sbin/smtp-sink")
    # As root, smtp-sink insists on dropping privileges to a named user.
    run_as = ["-u", "nobody"] if os.geteuid() == 0 else []
    if smtp_sink:  # Postfix's test server: accepts and discards, the floor for any SMTP server
        found["smtp-sink"] = start_on_port(
            lambda port: [smtp_sink, *run_as, "-c", f"127.0.0.1:{port}", "1000"]
        )
    else:
        print("smtp-sink: skipped, not installed (Postfix's test server, Debian package postfix)")
    if maildev:
        found["maildev"] = start_on_port(
            lambda port: [
                maildev, "--smtp", str(port), "--ip", "127.0.0.1", "--disable-web", "--silent"
            ],
            env={"TMPDIR": str(folder)},
        )  # fmt: skip
    else:
        print(
            "maildev: skipped, not found (--maildev PATH, on PATH, or in ~/.cache/bounceback-bench;"
            f" install: {MAILDEV_INSTALL})"
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode")
    parser.add_argument("--modes", default="reuse,per-message")
    parser.add_argument("--callback-timeout", type=float, default=120.0)
    parser.add_argument(
        "--warmup",
        type=int,
        default=500,
        help="messages per server and mode before the rounds, not counted (Node's JIT, caches)",
    )
    parser.add_argument("--maildev", metavar="PATH", help="maildev's command (else looked up)")
    args = parser.parse_args()
    maildev = find_maildev(args.maildev)
    modes = args.modes.split(",")
    print(
        f"load: asyncio SMTP client, {args.sessions} sessions, {args.messages} messages of"
        f" {args.size} B with a unique meta each; modes {', '.join(modes)};"
        f" {args.rounds} interleaved rounds per mode, after {args.warmup} warm-up messages per"
        " server and mode"
    )
    sink = Sink()
    run = 0
    with tempfile.TemporaryDirectory(prefix="bench-esp-") as name:
        procs = servers(Path(name), sink, maildev)
        try:
            idle = {label: rss_mb(p.pid)[0] for label, (p, _) in procs.items()}
            cpu_ratio: dict[str, list[float]] = {m: [] for m in modes}
            wall_ratio: dict[str, list[float]] = {m: [] for m in modes}
            per_message: dict[tuple[str, str], list[float]] = {}
            client_us: dict[tuple[str, str], list[float]] = {}
            throughput: dict[tuple[str, str], list[float]] = {}
            for mode in modes:
                for label, server in procs.items():
                    run += 1
                    batch = [message(i, run, args.size) for i in range(args.warmup)]
                    one_batch(label, server, sink, batch, args, mode == "reuse")
            for round_number in range(1, args.rounds + 1):
                for mode in modes:
                    cpu: dict[str, float] = {}
                    wall: dict[str, float] = {}
                    for label, server in procs.items():
                        run += 1
                        batch = [message(i, run, args.size) for i in range(args.messages)]
                        wall[label], cpu[label], client = one_batch(
                            label, server, sink, batch, args, mode == "reuse"
                        )
                        client_us.setdefault((mode, label), []).append(client * 1e6 / args.messages)
                        per_message.setdefault((mode, label), []).append(
                            cpu[label] * 1e6 / args.messages
                        )
                    cpu_ratio[mode].append(cpu["bare aiosmtpd"] / cpu["fake ESP"])
                    wall_ratio[mode].append(wall["bare aiosmtpd"] / wall["fake ESP"])
                    for label in procs:
                        throughput.setdefault((mode, label), []).append(args.messages / wall[label])
                    print(
                        f"round {round_number} {mode}: "
                        + ", ".join(
                            f"{label} {wall[label]:.2f} s wall, {cpu[label]:.2f} s CPU"
                            for label in procs
                        )
                    )
            final = {label: rss_mb(p.pid) for label, (p, _) in procs.items()}
            spool_mb = sum(p.stat().st_size for p in Path(name).glob("spool.sqlite3*")) / 2**20
            maildev_mb = sum(p.stat().st_size for p in Path(name).glob("maildev/*")) / 2**20
        finally:
            stop(*(p for p, _ in procs.values()), sink.process)
    for (mode, label), values in per_message.items():
        print(f"CPU per message, {mode}, {label}: {spread(values, 0)} us (min / median / max)")
    for mode in modes:
        medians = (f"{label} {statistics.median(client_us[(mode, label)]):.0f}" for label in procs)
        print(f"load generator CPU per message, {mode}, median, to: {', '.join(medians)} us")
    for (mode, label), values in throughput.items():
        print(f"throughput, {mode}, {label}: {spread(values, 0)} msg/s")
    for mode in modes:
        if (mode, "maildev") in throughput:
            pairs = zip(throughput[(mode, "fake ESP")], throughput[(mode, "maildev")], strict=True)
            over = [esp / maildev for esp, maildev in pairs]
            print(f"{mode}: fake ESP throughput over maildev's {spread(over)} (target: at least 3)")
            pairs = zip(
                per_message[(mode, "maildev")], per_message[(mode, "fake ESP")], strict=True
            )
            cost = [maildev / esp for maildev, esp in pairs]
            print(f"{mode}: maildev's CPU per message over the fake ESP's {spread(cost)}")
        print(
            f"{mode}: wall ratio bare/ESP {spread(wall_ratio[mode])},"
            f" CPU ratio bare/ESP {spread(cpu_ratio[mode])}"
        )
    for label, (now, peak) in final.items():
        print(f"memory {label}: {idle[label]:.0f} MB idle, {now:.0f} MB after, peak {peak:.0f} MB")
    print(
        f"spool on disk after all rounds: {spool_mb:.0f} MB; every callback meta checked byte-exact"
    )
    if "maildev" in final:
        print(f"maildev's .eml files on disk after all rounds: {maildev_mb:.0f} MB")
    worst = min(statistics.median(cpu_ratio[mode]) for mode in modes)
    print(f"ratio={worst:.2f}")


if __name__ == "__main__":
    main()
