"""The headers as an SMTP server really receives them: meta and preference-center headers.

A bare aiosmtpd server keeps each message's raw bytes (`original_content`), so these tests see
exactly what went over the socket, not what a parser makes of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from reference_impl.protocol.links import LinkKey, LinkVerdict, verify_meta
from reference_impl.protocol.meta import HEADER_NAME, parse_meta
from reference_impl.receiver.store import SentMessage, SQLiteStore
from reference_impl.sender.campaign import BATCH_SIZE, Campaign
from reference_impl.sender.message import ONE_CLICK
from reference_impl.sender.provider import Provider
from tests.reference_impl.sender.conftest import Capture

pytestmark = pytest.mark.e2e


def headers(raw: bytes) -> dict[str, bytes]:
    block = raw.split(b"\r\n\r\n", 1)[0]
    found: dict[str, bytes] = {}
    for line in block.split(b"\r\n"):
        assert not line[:1].isspace(), f"folded header line: {line!r}"
        name, _, value = line.partition(b": ")
        found[name.decode().lower()] = value
    return found


def run(port: int, **fields: Any) -> str:
    provider = replace(
        Provider("wire", "127.0.0.1", port, "news@acme.example", from_name="Acme"), **fields
    )
    report = Campaign(
        provider, ["user+tag@example.com"], "wzrk_default", receiver_url="http://127.0.0.1:9"
    ).run()
    (result,) = report.results
    assert result.error is None and result.meta is not None
    return result.meta


@pytest.mark.parametrize("center", ["none", "clevertap", "custom"])
def test_preference_center_headers_on_the_wire(capture: tuple[Capture, int], center: str) -> None:
    handler, port = capture
    url = "https://acme.example/prefs?m={meta}" if center == "custom" else None
    meta = run(port, preference_center=center, preference_center_url=url)
    (raw,) = handler.raw
    seen = headers(raw)
    assert seen[HEADER_NAME.lower()] == meta.encode()
    assert parse_meta(seen[HEADER_NAME.lower()].decode()).email == "user+tag@example.com"
    assert seen["reply-to"] == b"news@acme.example"
    assert seen["message-id"].endswith(b"@acme.example>")
    if center == "none":
        assert "list-unsubscribe" not in seen
        assert "list-unsubscribe-post" not in seen
        return
    quoted = meta.replace("@", "%40").replace("|", "%7C").replace("+", "%2B").encode()
    prefix = (
        b"<http://127.0.0.1:9/preferences?meta="
        if center == "clevertap"
        else (b"<https://acme.example/prefs?m=")
    )
    assert seen["list-unsubscribe"] == prefix + quoted + b">"
    assert seen["list-unsubscribe-post"] == ONE_CLICK.encode()


def test_a_74_character_meta_is_not_folded_gh_124452(capture: tuple[Capture, int]) -> None:
    """The measured trap: policy.SMTP on 3.11.7 folds a 74-character meta onto a new line."""
    handler, port = capture
    provider = Provider("wire", "127.0.0.1", port, "news@acme.example", account_id=1568798080)
    report = Campaign(provider, ["user1@example.com"], "wzrk_default").run()
    meta = report.results[0].meta
    assert meta is not None and len(meta) >= 74
    assert headers(handler.raw[0])[HEADER_NAME.lower()] == meta.encode()


def test_a_signed_preference_link_on_the_wire_verifies_for_its_own_meta_only(
    capture: tuple[Capture, int],
) -> None:
    """Issue 12: the List-Unsubscribe URL carries `sig`, an HMAC of exactly the meta sent."""
    handler, port = capture
    key = LinkKey("2026a", b"k" * 32)
    meta = run(port, preference_center="clevertap", link_key=key)
    link = headers(handler.raw[0])["list-unsubscribe"].decode()
    query = parse_qs(urlsplit(link.strip("<>")).query)
    assert query["meta"] == [meta]
    (sig,) = query["sig"]
    assert verify_meta(meta, sig, [key]) is LinkVerdict.VALID
    other = meta.replace("user+tag@", "ceo@")
    assert verify_meta(other, sig, [key]) is LinkVerdict.BAD_SIGNATURE


class CountingStore(SQLiteStore):
    """The real store, counting its record_sent transactions."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.transactions = 0

    def record_sent(self, messages: Iterable[SentMessage]) -> None:
        self.transactions += 1
        super().record_sent(messages)


def test_sent_messages_are_recorded_in_batches_and_none_is_lost(
    capture: tuple[Capture, int], tmp_path: Path
) -> None:
    """Issue 13: one transaction per message cost more than sending; every sent one is recorded."""
    handler, port = capture
    store = CountingStore(tmp_path / "rx.db")
    recipients = [f"user{n}@example.com" for n in range(BATCH_SIZE + 7)]
    provider = Provider("wire", "127.0.0.1", port, "news@acme.example")
    try:
        report = Campaign(provider, recipients, "wzrk_default", store=store, connections=2).run()
        assert len(report.sent) == len(recipients) == len(handler.raw)
        assert {m.meta for m in store.sent_messages()} == {r.meta for r in report.sent}
        assert 2 <= store.transactions < len(recipients) // 10
    finally:
        store.close()
