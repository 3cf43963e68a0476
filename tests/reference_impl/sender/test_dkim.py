"""Issue 16, "The sender signs": DKIM on every message of a provider that names a key.

Messages go over real SMTP to a bare aiosmtpd sink that keeps their raw bytes; they are verified
with dkimpy against the TXT record `dkim-keygen` printed, served by a dnsfunc instead of DNS.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import tomllib
from email import message_from_bytes
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from dkim.util import parse_tag_value

from reference_impl.cli import main
from reference_impl.protocol.meta import HEADER_NAME
from reference_impl.sender.campaign import Campaign
from reference_impl.sender.dkim import (
    CANONICALIZATION,
    SIGNED_HEADERS,
    _private_key,
    generate_key,
    public_der,
    signature_header,
    txt_value,
)
from reference_impl.sender.provider import ProviderError, dump_providers, parse_providers
from tests.reference_impl.sender.conftest import Capture

pytestmark = pytest.mark.e2e

SELECTOR = "bb2026"
DOMAIN = "acme.example"
KEYGEN = [sys.executable, "-m", "reference_impl.cli", "provider", "dkim-keygen"]


def _record_value(zone_line: str) -> bytes:
    """The TXT value a resolver returns: the quoted strings of the zone line, joined."""
    quoted = zone_line.split(" IN TXT ", 1)[1]
    return "".join(part for part in quoted.split('"')[1::2]).encode("ascii")


def _dns(zone_line: str):
    name = zone_line.split(" ", 1)[0].encode("ascii")

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes | None:
        return _record_value(zone_line) if query == name else None

    return dnsfunc


def _send(port: int, table: dict) -> str:
    base = {"nickname": "signed", "host": "127.0.0.1", "port": port}
    base["from_address"] = f"news@{DOMAIN}"
    base["preference_center"] = "custom"
    base["preference_center_url"] = "https://acme.example/u?e={email}"
    (provider,) = parse_providers(base | table, "test")
    report = Campaign(provider, ["user+tag@example.com"], "wzrk_default").run()
    (result,) = report.results
    assert result.error is None, result.failure
    assert result.meta is not None
    return result.meta


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "dkim.pem"
    return path, generate_key(SELECTOR, DOMAIN, path)


def _signed_message(capture: tuple[Capture, int], key: tuple[Path, str]) -> tuple[bytes, str]:
    handler, port = capture
    path, _ = key
    table = {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_file": str(path)}
    meta = _send(port, table)
    (raw,) = handler.raw
    return raw, meta


def test_a_message_sent_over_smtp_verifies_against_the_published_record(
    capture: tuple[Capture, int], key: tuple[Path, str]
) -> None:
    raw, _ = _signed_message(capture, key)
    assert raw.startswith(b"DKIM-Signature: ")
    assert dkim.verify(raw, dnsfunc=_dns(key[1]))


def test_the_meta_and_list_unsubscribe_pair_are_signed_relaxed_relaxed(
    capture: tuple[Capture, int], key: tuple[Path, str]
) -> None:
    raw, _ = _signed_message(capture, key)
    value = message_from_bytes(raw)["DKIM-Signature"]
    signature = parse_tag_value(value.encode("ascii"))
    assert signature[b"c"] == b"relaxed/relaxed"
    signed = {name.strip().lower() for name in signature[b"h"].split(b":")}
    for name in ("from", "to", "subject", "date", "message-id", HEADER_NAME.lower()):
        assert name.encode() in signed
    assert {b"list-unsubscribe", b"list-unsubscribe-post"} <= signed
    assert signed == {name.lower().encode() for name in SIGNED_HEADERS}


def test_one_byte_of_the_meta_changed_fails_verification(
    capture: tuple[Capture, int], key: tuple[Path, str]
) -> None:
    """A relay that rewrites the meta breaks the signature visibly."""
    raw, meta = _signed_message(capture, key)
    line = f"{HEADER_NAME}: {meta}\r\n".encode()
    changed = meta[:-1] + ("0" if meta[-1] != "0" else "1")
    tampered = raw.replace(line, f"{HEADER_NAME}: {changed}\r\n".encode())
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=_dns(key[1]))


def test_signing_leaves_the_meta_line_byte_exact(
    capture: tuple[Capture, int], key: tuple[Path, str]
) -> None:
    raw, meta = _signed_message(capture, key)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert f"\r\n{HEADER_NAME}: {meta}\r\n".encode() in header_block + b"\r\n"


def test_the_key_may_come_from_an_environment_variable(
    capture: tuple[Capture, int], key: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = capture
    monkeypatch.setenv("BB_DKIM_KEY", key[0].read_text())
    _send(port, {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_env": "BB_DKIM_KEY"})
    (raw,) = handler.raw
    assert dkim.verify(raw, dnsfunc=_dns(key[1]))


def test_a_provider_without_dkim_fields_sends_unsigned(capture: tuple[Capture, int]) -> None:
    handler, port = capture
    _send(port, {})
    (raw,) = handler.raw
    assert b"DKIM-Signature" not in raw


def _problems(table: dict) -> list[tuple[str, str]]:
    base = {"nickname": "p", "host": "127.0.0.1", "port": 25, "from_address": "a@acme.example"}
    with pytest.raises(ProviderError) as caught:
        parse_providers(base | table, "test")
    return caught.value.problems


def test_a_missing_key_file_is_one_problem_naming_the_field(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    table = {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_file": str(missing)}
    ((name, reason),) = _problems(table)
    assert name == "dkim_key_file" and "cannot read" in reason and "nope.pem" in reason


def test_a_key_file_that_is_no_pem_key_is_one_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    table = {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_file": str(bad)}
    ((name, reason),) = _problems(table)
    assert name == "dkim_key_file" and "not a PEM RSA private key" in reason


def test_a_bad_selector_is_one_problem_naming_the_field(key: tuple[Path, str]) -> None:
    table = {"dkim_selector": "bad_sel", "dkim_domain": DOMAIN, "dkim_key_file": str(key[0])}
    ((name, reason),) = _problems(table)
    assert name == "dkim_selector" and "'bad_sel'" in reason


def test_dkim_fields_are_all_or_nothing(key: tuple[Path, str]) -> None:
    assert [n for n, _ in _problems({"dkim_key_file": str(key[0])})] == [
        "dkim_selector",
        "dkim_domain",
    ]
    both = {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_env": "X"}
    assert [n for n, _ in _problems(both | {"dkim_key_file": str(key[0])})] == ["dkim_key_env"]


def test_a_provider_with_a_key_file_round_trips_through_its_toml(key: tuple[Path, str]) -> None:
    table = {"nickname": "p", "host": "127.0.0.1", "port": 25, "from_address": "a@acme.example"}
    table |= {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_file": str(key[0])}
    providers = parse_providers(table, "test")
    assert parse_providers(dump_providers(providers), "again") == providers
    assert providers[0].dkim_key() == key[0].read_bytes()


def test_an_unset_key_variable_is_a_reason_not_to_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BB_DKIM_KEY", raising=False)
    table = {"nickname": "p", "host": "127.0.0.1", "port": 25, "from_address": "a@acme.example"}
    table |= {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_key_env": "BB_DKIM_KEY"}
    (provider,) = parse_providers(table, "test")
    assert "BB_DKIM_KEY" in (provider.secret_problem() or "")
    garbage = provider.secret_problem({"BB_DKIM_KEY": "not a key"}) or ""
    assert "the key in BB_DKIM_KEY is not a PEM RSA private key" in garbage


def test_keygen_cli_prints_the_record_and_writes_a_0600_key(tmp_path: Path) -> None:
    out = tmp_path / "key.pem"
    done = subprocess.run(
        [*KEYGEN, "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'{SELECTOR}._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=rsa; p=')
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_keygen_cli_refuses_to_overwrite_in_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "key.pem"
    out.write_text("precious\n")
    done = subprocess.run(
        [*KEYGEN, "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "already exists" in done.stderr
    assert out.read_text() == "precious\n"


def test_provider_check_says_where_the_dkim_key_is_published(
    tmp_path: Path, key: tuple[Path, str]
) -> None:
    path = tmp_path / "provider.toml"
    path.write_text(
        'nickname = "p"\nhost = "127.0.0.1"\nport = 25\nfrom_address = "a@acme.example"\n'
        f'dkim_selector = "{SELECTOR}"\ndkim_domain = "{DOMAIN}"\ndkim_key_file = "{key[0]}"\n'
    )
    result = CliRunner().invoke(main, ["provider", "check", str(path), "--offline"])
    assert result.exit_code == 0, result.output
    assert f"DKIM-signed, key at {SELECTOR}._domainkey.{DOMAIN}." in result.output


def test_keygen_toml_format_prints_a_zone_entry_for_the_same_key(tmp_path: Path) -> None:
    """`--format toml`: the line for a scenario's [authentication.dns] (or a --zone file), the
    name without the root's dot and the record one string; the key file is the same kind."""
    out = tmp_path / "key.pem"
    done = subprocess.run(
        [
            *KEYGEN,
            "--selector",
            SELECTOR,
            "--domain",
            DOMAIN,
            "--out",
            str(out),
            "--format",
            "toml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (name, values), *_ = tomllib.loads(done.stdout).items()
    assert name == f"{SELECTOR}._domainkey.{DOMAIN}"
    assert values == [txt_value(public_der(out.read_bytes()))]
    assert "under [authentication.dns]" in done.stderr


@pytest.mark.parametrize("ends", [b"\r\n", b""])
def test_the_signature_is_byte_for_byte_dkimpys_with_the_rsa_step_in_openssl(
    key: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, ends: bytes
) -> None:
    """Issue 13: `signature_header` does the RSA step with `cryptography`; RSA PKCS#1 v1.5 is
    deterministic, so at the same second its line is exactly `dkim.sign`'s, and it verifies."""
    path, zone = key
    pem = path.read_bytes()
    monkeypatch.setattr(time, "time", lambda: 1_767_225_600.5)
    message = (
        f"From: Acme <news@{DOMAIN}>\r\nTo: user@example.com\r\nSubject: hi\r\n"
        f"{HEADER_NAME}: user@example.com|1|2|20260101|0|wzrk_default|-1|\r\n"
        "X-Not-Signed: x\r\n\r\n.dot line\r\nbody  with   spaces \r\n\r\n"
    ).encode() + ends
    ours = signature_header(message, SELECTOR.encode(), DOMAIN.encode(), _private_key(pem))
    theirs = dkim.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        pem,
        canonicalize=CANONICALIZATION,
        include_headers=[name.encode() for name in SIGNED_HEADERS],
    )
    assert ours == theirs
    assert dkim.verify(ours + message, dnsfunc=_dns(zone))
