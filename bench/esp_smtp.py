"""Benchmark: the fake ESP (`mixed` scenario) against a bare aiosmtpd server, same load, one run.

Each server, and the callback sink, runs in its own process, so the load generator shares no GIL.
The load is 20 concurrent SMTP sessions sending 5,000 messages of 2 KB, by Postfix's `smtp-source`
where it is installed, else by a small asyncio client. Prints messages/s for each, whether the fake
ESP's callbacks for every message reached the sink, and the ESP's memory; the last line is
`ratio=<fake ESP msg/s / bare aiosmtpd msg/s>`. Run: `.venv/bin/python bench/esp_smtp.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
BARE_SERVER = """
import asyncio, sys, threading
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


SINK_SERVER = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

events = 0
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, doc):
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply({"events": events})

    def do_POST(self):
        global events
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        count = sum(len(group) for group in body["events"].values())
        with lock:
            events += count
        self.reply({"TOTAL_EVENTS": count, "PROCESSED_EVENTS": count, "UNPROCESSED_EVENTS": []})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"callback sink listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""


class CallbackSink:
    """A receiver stand-in in its own process (so it never slows the load generator): counts the
    events of every v2 callback and answers as if it processed them all."""

    def __init__(self) -> None:
        self.process, port = start([sys.executable, "-c", SINK_SERVER])
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/callback"

    @property
    def events(self) -> int:
        with urllib.request.urlopen(f"{self.base}/count", timeout=10) as response:
            return int(json.loads(response.read())["events"])

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def start(command: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = LISTENING.search(line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, int(found[1])
    raise SystemExit(f"server did not start: {' '.join(command)}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, from /proc (0 where unavailable).

    Steadier than wall time on a shared machine: it counts the server's own work per message,
    not the time it spent waiting for a core.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> tuple[int, int]:
    """Current and peak resident memory of a process, from /proc (0 where unavailable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", status))
    return int(values.get("VmRSS", 0)), int(values.get("VmHWM", 0))


def wait_events(sink: CallbackSink, expected: int, timeout: float) -> float:
    """Wait until the sink has counted `expected` events (or `timeout` passed); seconds waited."""
    started = time.perf_counter()
    while sink.events < expected and time.perf_counter() - started < timeout:
        time.sleep(0.05)
    return time.perf_counter() - started


def message(index: int, size: int) -> bytes:
    email = f"user{index}@example.com"
    meta = f"{email}|1568798080|1730714617|20241104|0|wzrk_default|-{17000000 + index}|"
    head = (
        f"From: campaigns@platform.example\r\nTo: {email}\r\nSubject: bench {index}\r\n"
        f"X-CleverTap_META: {meta}\r\nMessage-ID: <{index}@bench.example>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line.startswith(code):
            raise RuntimeError(f"expected {code!r}, got {line!r}")
        if line[3:4] != b"-":
            return


async def _session(port: int, indexes: list[int], size: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await _expect(reader, b"250")
    for index in indexes:
        writer.write(b"MAIL FROM:<campaigns@platform.example>\r\n")
        await _expect(reader, b"250")
        writer.write(f"RCPT TO:<user{index}@example.com>\r\n".encode())
        await _expect(reader, b"250")
        writer.write(b"DATA\r\n")
        await _expect(reader, b"354")
        writer.write(message(index, size) + b".\r\n")
        await _expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    await _expect(reader, b"221")
    writer.close()
    await writer.wait_closed()


def drive(port: int, sessions: int, messages: int, size: int) -> float:
    """Send the load; seconds from the first connect to the last 250."""
    source = shutil.which("smtp-source")
    started = time.perf_counter()
    if source:
        subprocess.run(
            [source, "-s", str(sessions), "-m", str(messages), "-l", str(size), "-f",
             "campaigns@platform.example", "-t", "user@example.com", f"127.0.0.1:{port}"],
            check=True,
        )  # fmt: skip
    else:

        async def run() -> None:
            await asyncio.gather(
                *(_session(port, list(range(i, messages, sessions)), size) for i in range(sessions))
            )

        asyncio.run(run())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved runs of each; the best of each counts"
    )
    parser.add_argument("--callback-timeout", type=float, default=60.0)
    args = parser.parse_args()
    client = "smtp-source" if shutil.which("smtp-source") else "asyncio client (no smtp-source)"
    print(
        f"load: {client}, {args.sessions} sessions, {args.messages} messages of {args.size} B,"
        f" {args.rounds} interleaved round(s) each, best counts"
    )
    sink = CallbackSink()
    with tempfile.TemporaryDirectory(prefix="bench-esp-") as folder:
        bare, bare_port = start([sys.executable, "-c", BARE_SERVER])
        command = [
            sys.executable, "-c", "from simulator.esp.cli import esp; esp()",
            "--smtp-port=0", "--tls=none", "--scenario=mixed", f"--callback-url={sink.url}",
            f"--spool={Path(folder) / 'spool.sqlite3'}", "--batch-delay=0.5",
        ]  # fmt: skip
        fake, esp_port = start(command)
        try:
            idle_rss, _ = rss_kb(fake.pid)
            bare_times, esp_times, rss_after = [], [], []
            cpu = {"bare": 0.0, "esp": 0.0}
            for round_number in range(1, args.rounds + 1):
                before = cpu_seconds(bare.pid)
                bare_times.append(drive(bare_port, args.sessions, args.messages, args.size))
                cpu["bare"] += cpu_seconds(bare.pid) - before
                before = cpu_seconds(fake.pid)
                esp_times.append(drive(esp_port, args.sessions, args.messages, args.size))
                # The round's callbacks go out before the next bare round starts, so the ESP's
                # dispatching neither slows that round nor escapes the ESP's CPU figure.
                drained = wait_events(sink, args.messages * round_number, args.callback_timeout)
                cpu["esp"] += cpu_seconds(fake.pid) - before
                rss_after.append(rss_kb(fake.pid)[0])
                print(
                    f"round {round_number}: bare aiosmtpd {bare_times[-1]:.2f} s,"
                    f" fake ESP {esp_times[-1]:.2f} s"
                )
            sent = args.messages * args.rounds
            final_rss, peak_rss = rss_kb(fake.pid)
            spool_kb = sum(p.stat().st_size for p in Path(folder).iterdir()) // 1024
        finally:
            for process in (bare, fake):
                process.kill()
                process.wait()
    events = sink.events
    sink.close()
    bare_rate = args.messages / min(bare_times)
    esp_rate = args.messages / min(esp_times)
    print(f"bare aiosmtpd: {args.messages} in {min(bare_times):.2f} s = {bare_rate:.0f} msg/s")
    print(f"fake ESP (mixed): {args.messages} in {min(esp_times):.2f} s = {esp_rate:.0f} msg/s")
    print(
        f"callbacks: {events}/{sent} events delivered"
        f" (the last round's {drained:.2f} s after its last message was accepted)"
    )
    print(
        f"fake ESP memory (RSS): {idle_rss // 1024} MB idle, after each round "
        + ", ".join(f"{kb // 1024} MB" for kb in rss_after)
        + f", after callbacks {final_rss // 1024} MB (peak {peak_rss // 1024} MB);"
        f" spool on disk {spool_kb // 1024} MB"
    )
    per_message = {name: seconds * 1e6 / sent for name, seconds in cpu.items()}
    if per_message["esp"]:
        print(
            f"server CPU per message: bare aiosmtpd {per_message['bare']:.0f} us, fake ESP"
            f" {per_message['esp']:.0f} us while receiving and until its callbacks were delivered;"
            f" CPU ratio {per_message['bare'] / per_message['esp']:.2f}"
        )
    print(f"ratio={esp_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
