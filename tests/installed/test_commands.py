"""Issue 10, "proved the way a user meets it": every command of the installed wheel, run from an
empty folder outside the checkout, finds what it needs (scenarios, PROTOCOL.md, the schema)."""

from __future__ import annotations

import json
import queue
import re
import signal
import smtplib
import subprocess
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.installed.conftest import Installed

pytestmark = pytest.mark.installed

COMMANDS = """
import json, click
from reference_impl.cli import main

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, [*path, name])

print(json.dumps(list(walk(main, []))))
"""
HEADLINE_COMMANDS = {
    "receiver",
    "esp",
    "certify",
    "conform",
    "fuzz",
    "provider",
    "send",
    "demo",
    "scenarios",
    "protocol",
}
META = "user1@example.com|1568798080|1730714617|20241104|0|wzrk_default|-17005907|"
LISTENING = re.compile(r"SMTP listening on 127\.0\.0\.1:(\d+)")
DASHBOARD = re.compile(r"dashboard (http://127\.0\.0\.1:\d+)/")
WAIT_SECONDS = 30.0


def test_every_command_and_subcommand_answers_help(installed: Installed, empty_folder: Path):
    """`bounceback --help` and each subcommand's `--help` import cleanly from the wheel alone."""
    listing = installed.run("python", "-c", COMMANDS, cwd=empty_folder)
    assert listing.returncode == 0, listing.stderr
    paths = json.loads(listing.stdout)
    assert {path[0] for path in paths if path} >= HEADLINE_COMMANDS
    for path in paths:
        result = installed.run("bounceback", *path, "--help", cwd=empty_folder)
        assert result.returncode == 0, (path, result.stderr)
        assert result.stdout.startswith(f"Usage: bounceback {' '.join(path)}".rstrip()), path
        assert "Traceback" not in result.stderr, path


def test_demo_runs_the_loop_on_a_small_audience(installed: Installed, empty_folder: Path):
    """`bounceback demo` finds its shipped scenario; exit 0 means every message was attributed."""
    result = installed.run("bounceback", "demo", "--audience-size", "12", cwd=empty_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "attribution check" in result.stdout


def test_shipped_files_are_listed_shown_and_the_protocol_printed(
    installed: Installed, empty_folder: Path
):
    listing = installed.run("bounceback", "scenarios", cwd=empty_folder)
    assert listing.returncode == 0, listing.stderr
    assert "certification/vendors/well-behaved" in listing.stdout
    shown = installed.run("bounceback", "scenarios", "show", "smoke", cwd=empty_folder)
    assert shown.returncode == 0 and 'name = "smoke"' in shown.stdout
    section = installed.run("bounceback", "protocol", "4", cwd=empty_folder)
    assert section.returncode == 0 and section.stdout.startswith("## 4. Responses")


def test_an_unknown_scenario_fails_at_start_with_the_closest_name(
    installed: Installed, empty_folder: Path
):
    result = installed.run(
        "bounceback",
        "esp",
        "--scenario",
        "smok",
        "--callback-url",
        "http://127.0.0.1:9/callback",
        cwd=empty_folder,
    )
    assert result.returncode != 0
    assert "did you mean 'smoke'?" in result.stderr
    assert "Traceback" not in result.stderr


class _Recorder(BaseHTTPRequestHandler):
    """A callback URL that answers every v2 batch as fully processed and keeps the bodies."""

    bodies: queue.Queue[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.bodies.put(body)  # type: ignore[attr-defined]
        events = json.loads(body).get("events", {})
        total = sum(len(v) for v in events.values() if isinstance(v, list))
        reply = json.dumps(
            {"TOTAL_EVENTS": total, "PROCESSED_EVENTS": total, "UNPROCESSED_EVENTS": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads the bodies, not the access log."""


@pytest.fixture
def callback_url() -> Iterator[tuple[str, queue.Queue[bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.bodies = queue.Queue()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/callback", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _lines(stream: object) -> queue.Queue[str | None]:
    """The process's output lines as they come; None once it has closed its output."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(
    lines: queue.Queue[str | None], pattern: re.Pattern[str], seen: list[str]
) -> re.Match[str]:
    while True:
        try:
            line = lines.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            line = None
        if line is None:
            pytest.fail(f"no line matching {pattern.pattern!r}; output:\n{''.join(seen)}")
        seen.append(line)
        match = pattern.search(line)
        if match:
            return match


def _start_esp(
    installed: Installed, folder: Path, scenario: str, callback_url: str
) -> subprocess.Popen[str]:
    """The installed `bounceback esp` on free ports, plain SMTP, posting to `callback_url`."""
    return installed.start(
        "bounceback",
        "esp",
        "--scenario",
        scenario,
        "--smtp-port",
        "0",
        "--api-port",
        "0",
        "--tls",
        "none",
        "--callback-url",
        callback_url,
        cwd=folder,
    )


def test_esp_smoke_starts_takes_one_message_posts_its_callback_and_stops(
    installed: Installed, empty_folder: Path, callback_url: tuple[str, queue.Queue[bytes]]
):
    """`bounceback esp --scenario smoke`: real SMTP in, the meta echoed in a real callback out;
    the dashboard (issue 15) renders from the wheel's templates and serves its script."""
    url, bodies = callback_url
    esp = _start_esp(installed, empty_folder, "smoke", url)
    seen: list[str] = []
    try:
        lines = _lines(esp.stdout)
        port = int(_wait_for(lines, LISTENING, seen).group(1))
        dashboard = _wait_for(lines, DASHBOARD, seen).group(1)
        message = EmailMessage()
        message["From"] = "sender@bounceback.test"
        message["To"] = "user1@example.com"
        message["Subject"] = "installed smoke"
        message["X-CleverTap_META"] = META
        message.set_content("one message through the installed fake ESP")
        with smtplib.SMTP("127.0.0.1", port, timeout=WAIT_SECONDS) as smtp:
            smtp.send_message(message)
        body = json.loads(bodies.get(timeout=WAIT_SECONDS))
        events = [event for group in body["events"].values() for event in group]
        assert [event["meta"] for event in events] == [META]
        page = httpx.get(dashboard + "/", timeout=WAIT_SECONDS)
        assert page.status_code == 200 and "user1@example.com" in page.text
        assert httpx.get(dashboard + "/static/dashboard.js", timeout=WAIT_SECONDS).is_success
    finally:
        esp.send_signal(signal.SIGINT)
        code = esp.wait(timeout=WAIT_SECONDS)
    _wait_for(lines, re.compile("stopping"), seen)
    assert code == 0, "".join(seen)
    assert (empty_folder / "bounceback-esp.sqlite3").exists(), "the spool is the user's folder"


def test_esp_bulk_sender_rules_starts_and_says_its_zone_and_how_to_reach_it(
    installed: Installed, empty_folder: Path
):
    """Issue 16's demo path from the wheel alone: the shipped judging scenario starts (its
    zone, the Public Suffix List inside publicsuffixlist, dkimpy and pyspf all found) and its
    start lines say the zone, that DKIM needs a key and how to add one, and the check command."""
    esp = _start_esp(installed, empty_folder, "bulk-sender-rules", "http://127.0.0.1:9/callback")
    seen: list[str] = []
    try:
        lines = _lines(esp.stdout)
        _wait_for(lines, re.compile("press Ctrl-C"), seen)
    finally:
        esp.send_signal(signal.SIGINT)
        code = esp.wait(timeout=WAIT_SECONDS)
    text = "".join(seen)
    assert code == 0, text
    assert "every connection is taken to come from 192.0.2.10" in text
    assert "zone: SPF for platform.example; DMARC for platform.example; DKIM keys: none" in text
    assert "bounceback scenarios show bulk-sender-rules > mine.toml" in text
    assert "from_address at platform.example" in text
    assert re.search(r"--deliverability --esp 127\.0\.0\.1:\d+ --esp-api http://127", text)
