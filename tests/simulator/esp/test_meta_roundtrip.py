"""Property: any meta value sent in the header comes back in the callback byte-exact.

Any visible-ASCII string without whitespace, 1 to 900 characters, plus the source page's samples,
carried by smtplib (raw, and folded onto a continuation line as policy.SMTP does on 3.11.7,
gh-124452), by aiosmtplib, and by the standard library's own folding.
"""

from __future__ import annotations

import asyncio
import itertools
import smtplib
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reference_impl.receiver.server import running_receiver
from simulator.esp.headers import decode_encoded_words, extract_header
from simulator.esp.server import FakeESP
from tests.samples import sample
from tests.simulator.esp.conftest import PLATFORM_POLICY

pytestmark = pytest.mark.e2e

SAMPLE_METAS = [e["meta"] for e in sample("callback-request.json")["events"]["failed"]]
VISIBLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
METAS = st.one_of(st.sampled_from(SAMPLE_METAS), st.text(VISIBLE_ASCII, min_size=1, max_size=900))
ALL_DELIVERED = """
name = "roundtrip"
[outcomes]
delivered = 1.0
[callbacks]
batch_size = 1000
delay = 0.0
"""
ECHOING = ALL_DELIVERED + 'meta_encoded_words = "echo"\n'
MANGLING = ALL_DELIVERED + 'meta_mangling = "python-email"\n'
_counter = itertools.count()


def _running(folder: Path, text: str) -> Iterator[FakeESP]:
    scenario = folder / "roundtrip.toml"
    scenario.write_text(text)
    with (
        running_receiver(folder / "receiver.sqlite3") as rx,
        FakeESP(
            scenario, rx.callback_url, spool=folder / "spool.sqlite3", poll_seconds=0.01
        ) as fake,
    ):
        yield fake


@pytest.fixture(scope="module")
def esp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeESP]:
    """The default scenario setting: a meta carried as encoded-words is decoded."""
    yield from _running(tmp_path_factory.mktemp("roundtrip"), ALL_DELIVERED)


@pytest.fixture(scope="module")
def echoing_esp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeESP]:
    """`callbacks.meta_encoded_words = "echo"`: encoded-words are echoed as written."""
    yield from _running(tmp_path_factory.mktemp("echoing"), ECHOING)


@pytest.fixture(scope="module")
def mangling_esp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeESP]:
    """`callbacks.meta_mangling = "python-email"`: the gh-124452 vendor."""
    yield from _running(tmp_path_factory.mktemp("mangling"), MANGLING)


def raw_message(recipient: str, header: bytes) -> bytes:
    return (
        b"From: platform@example.com\r\nTo: " + recipient.encode() + b"\r\n" + header + b"\r\n"
        b"Subject: roundtrip\r\n\r\nbody\r\n"
    )


def echoed(esp: FakeESP, recipient: str, timeout: float = 10.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for batch in esp.reader().batches(20):
            for event in batch["payload"]["events"].get("success", []):
                if event["email"] == recipient:
                    return event.get("meta")
        time.sleep(0.01)
    raise AssertionError(f"no callback for {recipient}")


def literally_encoded_words(meta: str) -> bool:
    """A value that is itself RFC 2047 encoded-words is decoded by default, as RFC 2047 says; a
    real meta ends in `|`, so it never is one (docs/simulator.md)."""
    return decode_encoded_words(meta.encode()) is not None


def recipient() -> str:
    return f"roundtrip{next(_counter)}@example.com"


@given(meta=METAS)
def test_meta_via_smtplib_raw_header_comes_back_byte_exact(esp: FakeESP, meta: str) -> None:
    assume(not literally_encoded_words(meta))
    rcpt = recipient()
    with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
        client.sendmail(
            "p@example.com", [rcpt], raw_message(rcpt, b"X-CleverTap_META: " + meta.encode())
        )
    assert echoed(esp, rcpt) == meta


@given(meta=METAS, fold=st.sampled_from([b"\r\n ", b"\r\n\t", b"\r\n  "]))
def test_meta_folded_onto_a_continuation_line_comes_back_byte_exact(
    esp: FakeESP, meta: str, fold: bytes
) -> None:
    """The gh-124452 shape: `X-CleverTap_META:` CRLF SP value; unfolding must not add a space."""
    assume(not literally_encoded_words(meta))
    rcpt = recipient()
    with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
        client.sendmail(
            "p@example.com", [rcpt], raw_message(rcpt, b"X-CleverTap_META:" + fold + meta.encode())
        )
    assert echoed(esp, rcpt) == meta


@given(meta=METAS)
def test_meta_via_aiosmtplib_comes_back_byte_exact(esp: FakeESP, meta: str) -> None:
    # The email package itself decodes anything shaped like an encoded-word when the header is set.
    assume("=?" not in meta)
    rcpt = recipient()
    mail = EmailMessage(policy=PLATFORM_POLICY)
    mail["From"], mail["To"], mail["X-CleverTap_META"] = "p@example.com", rcpt, meta
    mail.set_content("body")
    asyncio.run(aiosmtplib.send(mail, hostname="127.0.0.1", port=esp.port, start_tls=False))
    assert echoed(esp, rcpt) == meta


@given(meta=METAS)
def test_echoing_esp_returns_stdlib_folded_metas_as_written(
    echoing_esp: FakeESP, meta: str
) -> None:
    """`meta_encoded_words = "echo"` (a vendor that does not decode), with policy.SMTP's own
    folding (78 columns). Values it leaves as text come back exactly; a value it turns into
    RFC 2047 encoded-words comes back as written on the wire, never decoded."""
    assume("=?" not in meta)
    rcpt = recipient()
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"], mail["To"], mail["X-CleverTap_META"] = "p@example.com", rcpt, meta
    mail.set_content("body")
    wire = mail.as_bytes()
    with smtplib.SMTP("127.0.0.1", echoing_esp.port, timeout=10) as client:
        client.send_message(mail)
    got = echoed(echoing_esp, rcpt)
    if b"=?" in extract_header(wire):
        assert got == extract_header(wire).decode()
    else:
        assert got == meta


@given(meta=METAS)
def test_default_esp_returns_any_meta_folded_by_stdlib_policy_smtp_byte_exact(
    esp: FakeESP, meta: str
) -> None:
    """By default (decode), policy.SMTP's 78-column output (encoded-words past ~78) round-trips."""
    assume("=?" not in meta)
    rcpt = recipient()
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"], mail["To"], mail["X-CleverTap_META"] = "p@example.com", rcpt, meta
    mail.set_content("body")
    with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
        client.send_message(mail)
    assert echoed(esp, rcpt) == meta


@pytest.mark.parametrize("length", [999, 1200, 3000])
def test_default_esp_returns_a_meta_longer_than_a_line_byte_exact(
    esp: FakeESP, length: int
) -> None:
    """Over 998 characters no sender can write the meta on one line; encoded-words carry it."""
    rcpt = recipient()
    meta = (f"{rcpt}|1568798080|1730714617|20241104|0|" + "L" * length)[
        : length - 10
    ] + "|-1700590|"
    mail = EmailMessage(policy=PLATFORM_POLICY)
    mail["From"], mail["To"], mail["X-CleverTap_META"] = "p@example.com", rcpt, meta
    mail.set_content("body")
    with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
        client.send_message(mail)
    assert len(meta) == length and echoed(esp, rcpt) == meta


@pytest.mark.parametrize("length", [999, 1200])
def test_echoing_esp_returns_a_meta_longer_than_a_line_still_encoded(
    echoing_esp: FakeESP, length: int
) -> None:
    """`meta_encoded_words = "echo"` stays available for vendors that do not decode."""
    rcpt = recipient()
    meta = (f"{rcpt}|1568798080|" + "L" * length)[: length - 1] + "|"
    mail = EmailMessage(policy=PLATFORM_POLICY)
    mail["From"], mail["To"], mail["X-CleverTap_META"] = "p@example.com", rcpt, meta
    mail.set_content("body")
    wire = mail.as_bytes()
    with smtplib.SMTP("127.0.0.1", echoing_esp.port, timeout=10) as client:
        client.send_message(mail)
    got = echoed(echoing_esp, rcpt)
    assert got == extract_header(wire).decode() and got.startswith("=?utf-8?q?")


@pytest.mark.parametrize(("length", "leading_space"), [(60, False), (74, True), (200, False)])
def test_python_email_mangling_adds_a_leading_space_to_a_74_character_meta(
    mangling_esp: FakeESP, length: int, leading_space: bool
) -> None:
    """`meta_mangling = "python-email"` over real SMTP: gh-124452 on 3.11.7 bites 61..77 only."""
    rcpt = recipient()
    meta = (f"{rcpt}|1568798080|" + "L" * length)[: length - 1] + "|"
    with smtplib.SMTP("127.0.0.1", mangling_esp.port, timeout=10) as client:
        client.sendmail(
            "p@example.com", [rcpt], raw_message(rcpt, b"X-CleverTap_META: " + meta.encode())
        )
    assert len(meta) == length
    assert echoed(mangling_esp, rcpt) == (" " + meta if leading_space else meta)
    (message,) = [m for m in mangling_esp.reader().messages(200) if rcpt in m["recipients"]]
    assert message["meta"] == meta, "the spool records the meta as received"


def test_python_email_mangling_echoes_a_meta_the_email_package_refuses_unchanged(
    mangling_esp: FakeESP,
) -> None:
    """A value with a line separator (U+2028) makes the email package raise: echoed as received,
    the message is still accepted and reported."""
    rcpt = recipient()
    meta = f"{rcpt}|1568798080|a\u2028b|"
    with smtplib.SMTP("127.0.0.1", mangling_esp.port, timeout=10) as client:
        client.sendmail(
            "p@example.com", [rcpt], raw_message(rcpt, b"X-CleverTap_META: " + meta.encode())
        )
    assert echoed(mangling_esp, rcpt) == meta
