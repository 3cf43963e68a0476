"""Provider files (PROTOCOL.md section 1): every field validated, all problems reported at once."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.sender.provider import (
    DEFAULT_ACCOUNT_ID,
    FIELDS,
    Provider,
    ProviderError,
    dump_providers,
    load_providers,
    parse_providers,
    select_provider,
)

ENV = {"BB_SMTP_PASSWORD": "s3cret"}
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
addresses = st.builds(
    lambda local, domain: f"{local}@{domain}.example",
    st.from_regex(r"[a-z0-9_+-]{1,12}(\.[a-z0-9]{1,5})?", fullmatch=True),
    labels,
)
hosts = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", labels, labels),
    st.sampled_from(["127.0.0.1", "::1", "localhost"]),
)


@st.composite
def provider_tables(draw: st.DrawFn, nickname: str | None = None) -> dict[str, Any]:
    """Any valid provider table, optional fields present or not."""
    table: dict[str, Any] = {
        "nickname": nickname or draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        "host": draw(hosts),
        "port": draw(st.integers(1, 65535)),
        "from_address": draw(addresses),
    }
    optional = {
        "scheme": st.sampled_from(["smtp", "starttls", "smtps"]),
        "from_name": st.text(max_size=30).filter(lambda s: "\r" not in s and "\n" not in s),
        "reply_address": addresses,
        "account_id": st.integers(0, 2**63 - 1),
        "timeout": st.floats(0.001, 3600, allow_nan=False),
        "ca_file": st.text(min_size=1, max_size=20),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            table[name] = draw(strategy)
    secret = draw(st.sampled_from(["none", "password", "env"]))
    if secret != "none":
        table["username"] = draw(st.text(min_size=1, max_size=20))
        if secret == "password":
            table["password"] = draw(st.text(max_size=20))
        else:
            table["password_env"] = "BB_SMTP_PASSWORD"
    if draw(st.booleans()):
        table["dkim_selector"] = draw(st.builds(lambda a, b: f"{a}.{b}", labels, labels))
        table["dkim_domain"] = draw(hosts.filter(lambda h: ":" not in h))
        table["dkim_key_env"] = "BB_DKIM_KEY"
    center = draw(st.sampled_from(["absent", "none", "clevertap", "custom"]))
    if center != "absent":
        table["preference_center"] = center
    if center == "custom":
        table["preference_center_url"] = draw(
            st.sampled_from(
                [
                    "https://prefs.example/u?e={email}",
                    "https://prefs.example/unsubscribe?m={meta}&id={message_id}",
                    "http://prefs.example/",
                ]
            )
        )
    return table


def _reload(providers: list[Provider]) -> list[Provider]:
    text = tomli_w.dumps(dump_providers(providers))
    return parse_providers(tomllib.loads(text), "reloaded")


@given(provider_tables())
def test_any_valid_single_provider_file_round_trips(table: dict[str, Any]) -> None:
    """Load, write back as TOML, load again: the same settings."""
    providers = parse_providers(tomllib.loads(tomli_w.dumps(table)), "generated")
    assert _reload(providers) == providers
    assert providers[0].nickname == table["nickname"]


@given(st.lists(provider_tables(), min_size=2, max_size=4))
def test_any_valid_multi_provider_file_round_trips(tables: list[dict[str, Any]]) -> None:
    for number, table in enumerate(tables):
        table["nickname"] = f"provider-{number}"
    providers = parse_providers({"provider": tables}, "generated")
    assert [p.nickname for p in providers] == [t["nickname"] for t in tables]
    assert _reload(providers) == providers


INVALID: dict[str, list[Any]] = {
    "nickname": ["", "   ", 5],
    "host": ["bad host!", "-leading.example", 7, ""],
    "port": [0, 65536, "25", True, 2.5],
    "scheme": ["tls", "SMTP", 1],
    "username": ["", 3],
    "password_env": ["1NOT-A-NAME", "has space"],
    "from_name": ["two\nlines", 4],
    "from_address": ["no-at-sign", "a@", "@b.example", "sp ace@x.example", "jörg@x.example"],
    "reply_address": ["x@", "nope", 1],
    "preference_center": ["maybe", "CleverTap", 0],
    "preference_center_url": ["ftp://prefs.example/", "https://x.example/{nope}", 9],
    "account_id": [-1, "123", 2**63, 1.5],
    "timeout": [0, -1, 3601, "30", True],
    "ca_file": [5],
    "callback_url": ["http://127.0.0.1/callback"],
}


def _corrupt(table: dict[str, Any], name: str, value: Any) -> None:
    table[name] = value
    if name == "password_env":
        table.pop("password", None)
        table.setdefault("username", "someone")
    if name == "preference_center_url" and not isinstance(value, int):
        table["preference_center"] = "custom"


@given(
    provider_tables(),
    st.lists(st.sampled_from(sorted(INVALID)), min_size=1, max_size=5, unique=True),
    st.data(),
)
def test_every_invalid_field_is_reported_by_name(
    table: dict[str, Any], names: list[str], data: st.DataObject
) -> None:
    """All problems at once: each corrupted field appears in the one error."""
    # The URL first: corrupting it switches the center to custom, which must not undo a bad center.
    for name in sorted(names, key=lambda name: name != "preference_center_url"):
        _corrupt(table, name, data.draw(st.sampled_from(INVALID[name]), label=name))
    with pytest.raises(ProviderError) as raised:
        parse_providers(table, "generated")
    assert set(names) <= set(raised.value.fields)
    for name in names:
        assert f" {name}: " in str(raised.value)


def test_required_fields_are_named_when_missing() -> None:
    with pytest.raises(ProviderError) as raised:
        parse_providers({}, "empty.toml")
    assert set(raised.value.fields) == {"nickname", "host", "port", "from_address"}


def test_unknown_field_is_refused_with_a_suggestion() -> None:
    table = {"nickname": "a", "host": "h.example", "port": 25, "from_address": "a@b.example"}
    with pytest.raises(ProviderError, match="did you mean 'password'"):
        parse_providers({**table, "pasword": "x", "username": "u"}, "typo.toml")


def test_callback_url_is_read_only() -> None:
    table = {"nickname": "a", "host": "h.example", "port": 25, "from_address": "a@b.example"}
    with pytest.raises(ProviderError, match="callback_url: read-only"):
        parse_providers({**table, "callback_url": "http://x/callback"}, "f")


def test_password_and_password_env_are_exclusive_and_need_a_username() -> None:
    base = {"nickname": "a", "host": "h.example", "port": 25, "from_address": "a@b.example"}
    with pytest.raises(ProviderError) as raised:
        parse_providers(
            {**base, "username": "u", "password": "p", "password_env": "BB_SMTP_PASSWORD"}, "f"
        )
    assert raised.value.fields == ["password_env"]
    with pytest.raises(ProviderError) as raised:
        parse_providers({**base, "password": "p"}, "f")
    assert raised.value.fields == ["username"]


def test_password_env_is_read_when_needed_not_stored() -> None:
    table = {
        "nickname": "a",
        "host": "h.example",
        "port": 25,
        "from_address": "a@b.example",
        "username": "u",
        "password_env": "BB_SMTP_PASSWORD",
    }
    provider = parse_providers(table, "f")[0]
    assert provider.password is None
    assert provider.secret(ENV) == "s3cret"
    assert "s3cret" not in repr(provider)


def test_an_unset_password_env_is_no_file_problem_only_a_reason_not_to_log_in() -> None:
    """Issue 10: `test-email --nickname local` must not demand another provider's password.

    The file loads whatever the environment holds; the provider whose variable is unset says so
    (naming the variable) when it is about to be used, and a provider without AUTH never does.
    """
    tables = [
        {"nickname": "local", "host": "127.0.0.1", "port": 2525, "from_address": "a@b.example"},
        {
            "nickname": "acme",
            "host": "smtp.acme.example",
            "port": 465,
            "from_address": "a@b.example",
            "username": "u",
            "password_env": "BB_UNSET_FOR_THIS_TEST",
        },
    ]
    local, acme = parse_providers({"provider": tables}, "f")
    assert local.secret_problem({}) is None
    problem = acme.secret_problem({})
    assert problem is not None and "BB_UNSET_FOR_THIS_TEST" in problem and "acme" in problem
    assert acme.secret_problem({"BB_UNSET_FOR_THIS_TEST": "x"}) is None


def test_nicknames_must_be_unique_across_providers() -> None:
    one = {"nickname": "same", "host": "h.example", "port": 25, "from_address": "a@b.example"}
    with pytest.raises(ProviderError) as raised:
        parse_providers({"provider": [one, dict(one)]}, "f")
    assert raised.value.fields == ["provider[1].nickname"]


def test_select_provider_needs_a_nickname_when_the_file_has_several() -> None:
    tables = [
        {"nickname": n, "host": "h.example", "port": 25, "from_address": "a@b.example"}
        for n in ("first", "second")
    ]
    providers = parse_providers({"provider": tables}, "f")
    assert select_provider(providers, "second", "f").nickname == "second"
    with pytest.raises(ProviderError, match="several providers"):
        select_provider(providers, None, "f")
    with pytest.raises(ProviderError, match="no provider 'third'"):
        select_provider(providers, "third", "f")


def test_defaults_of_optional_fields() -> None:
    table = {"nickname": "a", "host": "h.example", "port": 25, "from_address": "a@b.example"}
    provider = parse_providers(table, "f")[0]
    assert provider.scheme == "smtp"
    assert provider.preference_center == "none"
    assert provider.account_id == DEFAULT_ACCOUNT_ID
    assert provider.reply_to == "a@b.example"


def test_unreadable_and_non_toml_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="cannot be read"):
        load_providers(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("nickname = ")
    with pytest.raises(ProviderError, match="not valid TOML"):
        load_providers(broken)


@pytest.mark.parametrize("name", ["provider.toml", "providers.toml"])
def test_example_provider_files_are_valid(name: str) -> None:
    providers = load_providers(EXAMPLES / name)
    assert providers
    assert set(dump_providers(providers[:1])) <= set(FIELDS)
