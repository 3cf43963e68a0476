"""The callback URL's token never reaches the fake ESP's output (it authorizes callbacks).

Unit tests for the masking, and `bounceback esp` run as a subprocess delivering a real callback
to a token-guarded reference receiver, with and without `--verbose` (httpx logs each request's
full URL at INFO and DEBUG).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference_impl.receiver.server import running_receiver
from simulator.esp.redaction import MASK, SecretFilter, masked_url, url_secrets
from tests.simulator.esp.conftest import send_campaign

TOKEN = "cbtok-93d1f07a5e2b"
LISTENING = re.compile(r"SMTP listening on 127\.0\.0\.1:(\d+)")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8025/callback/" + TOKEN, "http://127.0.0.1:8025/callback/****"),
        ("http://127.0.0.1:8025/callback", "http://127.0.0.1:8025/callback"),
        ("https://h.example/hooks/v2/secret", "https://h.example/hooks/****"),
        ("https://h.example/cb?key=secret", "https://h.example/cb?****"),
        ("https://me:pw@h.example:9/cb", "https://me:****@h.example:9/cb"),
        ("http://h.example", "http://h.example"),
    ],
)
def test_masked_url_keeps_where_and_hides_how(url: str, shown: str) -> None:
    """The first path segment and the host stay; a later segment, a query, a password do not."""
    assert masked_url(url) == shown


def test_secret_filter_rewrites_any_record_holding_the_url() -> None:
    url = f"http://127.0.0.1:8025/callback/{TOKEN}"
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: POST %s", (url,), None
    )
    SecretFilter(url).filter(record)
    assert record.getMessage() == "HTTP Request: POST http://127.0.0.1:8025/callback/****"
    bare = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (TOKEN,), None)
    SecretFilter(url).filter(bare)
    assert TOKEN not in bare.getMessage() and MASK in bare.getMessage()
    assert url_secrets(url) == [TOKEN]


@pytest.mark.e2e
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_the_callback_token_is_in_no_line_the_esp_prints(tmp_path: Path, verbose: bool) -> None:
    """A callback delivered to /callback/<token>: stdout and stderr never show the token."""
    with running_receiver(tmp_path / "rx.sqlite3", token=TOKEN) as rx:
        assert TOKEN in rx.callback_url
        command = [
            sys.executable,
            "-m",
            "reference_impl.cli",
            "esp",
            "--smtp-port=0",
            f"--callback-url={rx.callback_url}",
            "--scenario=smoke",
            "--seed=4",
            f"--spool={tmp_path / 'spool.sqlite3'}",
            "--tls=none",
            "--batch-delay=0",
            *(["--verbose"] if verbose else []),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            assert process.stdout is not None
            port = None
            seen = []
            deadline = time.monotonic() + 20
            while port is None and time.monotonic() < deadline:
                line = process.stdout.readline()
                seen.append(line)
                found = LISTENING.search(line)
                port = int(found[1]) if found else None
            assert port is not None, "".join(seen)
            send_campaign(port, ["bounce+token@example.com"])
            deadline = time.monotonic() + 20
            while not rx.store.callbacks(0, 10) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rx.store.callbacks(0, 10), "the callback did not arrive"
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=20)
    output = "".join(seen) + out + err
    assert "/callback/****" in output
    if verbose:
        assert "HTTP Request: POST" in output  # httpx did log the request, masked
    assert TOKEN not in output
