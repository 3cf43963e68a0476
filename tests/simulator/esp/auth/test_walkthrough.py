"""docs/simulator.md's walkthrough ("Try it"), step by step as a user types it, each command a
real process: `dkim-keygen --format toml` -> the line pasted into a copy of `bulk-sender-rules`
-> `bounceback esp` (its start lines say the zone and how to point a provider at it) -> `send`
-> the verdicts in the ESP's `GET /messages` -> `provider check --deliverability --esp`; and an
unsigned provider of another domain refused with the rule named."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

BOUNCEBACK = [sys.executable, "-m", "reference_impl.cli"]
WAIT = 30.0
POINT = re.compile(r'point a provider at it: host = "([^"]+)", port = (\d+), scheme = "(\w+)"')
CHECK = re.compile(r"see its verdicts: (bounceback provider check PROVIDER\.toml .*)$")
PROVIDER = """nickname = "demo"
host = "{host}"
port = {port}
scheme = "{scheme}"
from_address = "news@{domain}"
preference_center = "custom"
preference_center_url = "https://platform.example/unsubscribe?e={{email}}"
"""
SIGNING = """dkim_selector = "bb2026"
dkim_domain = "platform.example"
dkim_key_file = "dkim.pem"
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BOUNCEBACK, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def esp(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    """Steps 1 to 3: the key, the scenario with its record, the ESP started; its start lines."""
    keygen = _run(
        "provider", "dkim-keygen", "--selector", "bb2026", "--domain", "platform.example",
        "--out", "dkim.pem", "--format", "toml", cwd=tmp_path,
    )  # fmt: skip
    assert keygen.returncode == 0, keygen.stderr
    assert "under [authentication.dns]" in keygen.stderr
    (entry,) = keygen.stdout.splitlines()
    shown = _run("scenarios", "show", "bulk-sender-rules", cwd=tmp_path)
    scenario = shown.stdout.replace("[authentication.dns]\n", f"[authentication.dns]\n{entry}\n")
    assert tomllib.loads(scenario)["authentication"]["dns"]["bb2026._domainkey.platform.example"]
    (tmp_path / "mine.toml").write_text(scenario)
    process = subprocess.Popen(
        [*BOUNCEBACK, "esp", "--scenario", "mine.toml", "--tls", "none", "--smtp-port", "0",
         "--api-port", "0", "--callback-url", "http://127.0.0.1:9/callback"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PYTHONUNBUFFERED": "1", "PATH": ""},
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while not seen or not seen[-1].startswith("press Ctrl-C"):
            line = lines.get(timeout=WAIT)
            assert line is not None, "\n".join(seen)
            seen.append(line)
        yield seen, tmp_path
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT)


def test_the_walkthrough_signs_sends_and_shows_the_verdicts(
    esp: tuple[list[str], Path],
) -> None:
    seen, folder = esp
    text = "\n".join(seen)
    assert "every connection is taken to come from 192.0.2.10" in text
    assert "zone: SPF for platform.example; DMARC for platform.example;" in text
    assert "DKIM keys: bb2026._domainkey.platform.example" in text
    assert "enforcement: unauthenticated=refuse, unaligned=refuse, unsubscribe=spam" in text
    host, port, scheme = next(m for line in seen if (m := POINT.search(line))).groups()
    command = next(m for line in seen if (m := CHECK.search(line))).group(1)
    api = command.rsplit(" ", 1)[1]
    settings = {"host": host, "port": port, "scheme": scheme}
    (folder / "provider.toml").write_text(
        PROVIDER.format(**settings, domain="platform.example") + SIGNING
    )
    sent = _run(
        "send", "--provider", "provider.toml", "--to", "reader@example.com",
        "--label", "walkthrough", "--variant", "0", cwd=folder,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    (message,) = httpx.get(f"{api}/messages", timeout=10).json()["messages"]
    assert message["auth"] == {
        "dkim": "pass",
        "spf": "pass",
        "dmarc": "pass",
        "dkim_domain": "platform.example",
        "spf_domain": "platform.example",
        "from_domain": "platform.example",
    }
    assert message["authentication_results"] == (
        "fake-esp.bounceback.test; dkim=pass header.d=platform.example header.s=bb2026;"
        " spf=pass smtp.mailfrom=news@platform.example;"
        " dmarc=pass (p=reject) header.from=platform.example"
    )
    # The command the start line printed, with the provider file for PROVIDER.toml.
    args = command.split()[1:]
    checked = _run(*[("provider.toml" if a == "PROVIDER.toml" else a) for a in args], cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith("Verdict: PASS (0 FAIL, 0 WARN)")

    # An unsigned provider of a domain the zone does not authorise: refused, the rule named.
    (folder / "other.toml").write_text(PROVIDER.format(**settings, domain="other.example"))
    refused = _run(*[("other.toml" if a == "PROVIDER.toml" else a) for a in args], cwd=folder)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "FAIL  accepted" in refused.stdout
    assert "550 5.7.26" in refused.stdout and "(bulk-sender rule unauthenticated)" in refused.stdout
