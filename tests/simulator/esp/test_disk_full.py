"""The fake ESP survives a full spool disk and loses no message it accepted (issue 12, durability).

The spool lives on a 2 MiB tmpfs, half of it taken by a filler file, and mail is sent until the
kernel answers ENOSPC. A message the ESP cannot spool is answered `452 4.3.1` (insufficient
system storage: the platform keeps it and retries), never 250. Once the filler is removed the same
ESP accepts mail again, and every message it answered 250, before or after, has its callbacks
delivered to a real receiver: each expected system event exactly once, and none for a message
that was refused.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.esp import replies
from simulator.esp.server import FakeESP
from tests.diskfull import Filler, free_bytes, small_disk
from tests.simulator.esp.conftest import (
    assert_each_event_once,
    expected_outcomes,
    message,
    meta_for,
)

pytestmark = pytest.mark.e2e
MAX_MESSAGES = 1000  # the disk is full long before
REFUSED_IN_A_ROW = 5  # DATA refusals that mean the disk is full, not a blip
FULL_MESSAGES = 10  # sent once the filler has taken the last free byte
AFTER_MESSAGES = 10  # sent once the space is back
SEED = 3


def send(client: smtplib.SMTP, number: int, accepted: dict[str, str]) -> str:
    """One message, as the platform sends it (one recipient, its own meta); the DATA reply.
    An accepted message's recipient and meta go in `accepted`."""
    recipient = f"m{number}@example.com"
    meta = meta_for(recipient, -17005000 - number)
    try:
        client.send_message(message(recipient, meta))
    except smtplib.SMTPDataError as refused:
        return f"{refused.smtp_code} {refused.smtp_error.decode()}"
    accepted[recipient] = meta
    return replies.OK


def assert_refused_for_storage(reply: str) -> None:
    assert reply == replies.SPOOL_DISK_FULL, reply


def test_a_full_spool_disk_answers_452_and_loses_no_accepted_message(
    receiver: RunningReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    accepted: dict[str, str] = {}
    with small_disk(tmp_path / "disk") as disk:
        filler = Filler(disk)
        filler.take(1024 * 1024)
        with (
            FakeESP(
                "smoke",
                receiver.callback_url,
                seed=SEED,
                spool=disk / "spool.sqlite3",
                tls="none",
                batch_delay=0.0,
                poll_seconds=0.02,
                retry_schedule=(0.2,) * 20,
            ) as esp,
            smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client,
        ):
            refused_in_a_row = number = 0
            while refused_in_a_row < REFUSED_IN_A_ROW:
                assert number < MAX_MESSAGES, "the disk never filled"
                reply = send(client, number, accepted)
                if reply == replies.OK:
                    refused_in_a_row = 0
                else:
                    assert_refused_for_storage(reply)
                    refused_in_a_row += 1
                number += 1
            before_full = len(accepted)
            assert before_full, "nothing was accepted before the disk filled"

            filler.take()  # the last free byte too
            assert free_bytes(disk) == 0
            for _ in range(FULL_MESSAGES):
                reply = send(client, number, accepted)
                if reply != replies.OK:  # a page freed inside the spool may have been reused
                    assert_refused_for_storage(reply)
                number += 1

            filler.free()
            for _ in range(AFTER_MESSAGES):
                assert send(client, number, accepted) == replies.OK
                number += 1
            stats = esp.wait_delivered(timeout=20, messages=len(accepted))
    print(
        f"messages={number} accepted_before_full={before_full}"
        f" accepted_total={len(accepted)} events={stats['events_batched']}"
    )
    assert stats["messages"] == len(accepted), "a refused message was spooled"
    assert stats["events_batched"] == len(accepted)
    assert stats["dead_letters"] == 0
    assert_each_event_once(receiver, expected_outcomes("smoke", SEED, accepted))
    # The dispatcher's failed passes name the full disk, not a ROLLBACK SQLite had already done.
    assert "disk is full" in caplog.text
    assert "no transaction is active" not in caplog.text
