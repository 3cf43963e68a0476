"""`bounceback provider test-email` ("Send a test email", PROTOCOL.md section 1) for every provider
file the project ships, run for real against the fake ESP.

Each shipped provider keeps every field but its address (host, port and, for TLS, the fake ESP's
throwaway CA): its scheme, AUTH, preference center and the other providers of its file stay as
shipped, so the command is proved the way a user meets it (issue 10).
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner

from reference_impl.cli import main
from reference_impl.errors import EXIT_OPERATOR
from reference_impl.receiver.server import RunningReceiver
from simulator.esp.server import FakeESP

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(
    [*ROOT.glob("examples/*.toml"), *ROOT.glob("scenarios/certification/providers/*.toml")]
)
TLS_FOR_SCHEME = {"smtp": "none", "starttls": "starttls", "smtps": "smtps"}
PASSWORD = "shipped-file-test-password"
TEST_EMAIL = ("provider", "test-email", str(ROOT / "examples" / "providers.toml"))


def _tables(path: Path) -> list[dict[str, Any]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return data.get("provider", [data])


def _cases() -> list[Any]:
    return [
        pytest.param(path, table["nickname"], id=f"{path.name}:{table['nickname']}")
        for path in SHIPPED
        for table in _tables(path)
    ]


def _pointed_at(path: Path, nickname: str, esp: FakeESP, folder: Path) -> Path:
    """The shipped file with provider `nickname` pointed at `esp`; the others left as shipped."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for table in data.get("provider", [data]):
        if table["nickname"] != nickname:
            continue
        table.update(host="127.0.0.1", port=esp.port)
        if esp.ca is not None:
            esp.ca.cert_pem.write_to_path(str(folder / "ca.pem"))
            table["ca_file"] = str(folder / "ca.pem")
    out = folder / path.name
    out.write_text(tomli_w.dumps(data), encoding="utf-8")
    return out


def test_every_shipped_provider_file_is_covered() -> None:
    names = {path.name for path in SHIPPED}
    assert {"provider.toml", "providers.toml", "fake-esp.toml"} <= names


@pytest.mark.parametrize(("path", "nickname"), _cases())
def test_test_email_works_for_every_shipped_provider(
    tmp_path: Path,
    receiver: RunningReceiver,
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    nickname: str,
) -> None:
    """Only the chosen provider's password is asked for; `clevertap` gets the receiver's URL."""
    table = next(t for t in _tables(path) if t["nickname"] == nickname)
    for other in _tables(path):
        if other.get("password_env"):
            monkeypatch.delenv(other["password_env"], raising=False)
    credentials = None
    if table.get("username"):
        credentials = {table["username"]: PASSWORD}
        monkeypatch.setenv(table["password_env"], PASSWORD)
    tls = TLS_FOR_SCHEME[table.get("scheme", "smtp")]
    with FakeESP("smoke", receiver.callback_url, tls=tls, credentials=credentials) as esp:
        args = ["provider", "test-email", str(_pointed_at(path, nickname, esp, tmp_path))]
        args += ["--nickname", nickname, "--to", "user1@example.com"]
        if table.get("preference_center") == "clevertap":
            args += ["--receiver-url", receiver.url]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "accepted the test email to user1@example.com" in result.output
        (message,) = esp.reader().messages()
    assert message["recipients"] == ["user1@example.com"]
    assert "|test_email|" in message["meta"]


def test_clevertap_without_receiver_url_is_one_line_naming_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [*TEST_EMAIL, "--nickname", "local", "--to", "user1@example.com"],
        env={"BOUNCEBACK_RECEIVER_URL": None},
    )
    assert result.exit_code == EXIT_OPERATOR
    (line,) = result.output.splitlines()
    assert line.startswith("bounceback provider test-email: error: provider local")
    assert "--receiver-url" in line


def test_a_provider_whose_password_variable_is_unset_says_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BB_SMTP_PASSWORD", raising=False)
    result = CliRunner().invoke(
        main,
        [*TEST_EMAIL, "--nickname", "acme-smtps", "--to", "user1@example.com"],
    )
    assert result.exit_code == EXIT_OPERATOR
    (line,) = result.output.splitlines()
    assert "password_env names BB_SMTP_PASSWORD, which is not set" in line


def test_an_unreachable_server_is_an_operator_error_not_a_verdict(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = tmp_path / "p.toml"
    provider.write_text(
        f'nickname = "gone"\nhost = "127.0.0.1"\nport = {port}\nfrom_address = "a@b.example"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["provider", "test-email", str(provider), "--to", "user1@example.com"]
    )
    assert result.exit_code == EXIT_OPERATOR
    last = result.output.splitlines()[-1]
    assert last.startswith("bounceback provider test-email: error: could not reach provider gone")
    assert f"127.0.0.1:{port}" in last and "SMTP connection error at connect" in last
