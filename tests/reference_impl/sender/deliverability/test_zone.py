"""The zone a deliverability check is judged against: a scenario's `[authentication]` table,
read on the platform side's own terms; every problem is named at once, each by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_impl.errors import PlatformError
from reference_impl.sender.deliverability import ZoneError, load_zone, parse_zone
from reference_impl.sender.deliverability.zone import DEFAULT_HELO


def test_a_file_without_the_table_is_one_problem_saying_what_to_add() -> None:
    with pytest.raises(ZoneError) as caught:
        parse_zone({"name": "smoke"}, "z.toml")
    assert caught.value.problems == [("(file)", caught.value.problems[0][1])]
    assert "[authentication]" in str(caught.value)
    assert isinstance(caught.value, PlatformError)


def test_every_bad_key_is_reported_at_once_by_name() -> None:
    document = {
        "authentication": {
            "client_ip": "192.0.2.999",
            "helo": 7,
            "dns": {"example.com": "v=spf1 -all", "a..b": ["x"]},
        }
    }
    with pytest.raises(ZoneError) as caught:
        parse_zone(document, "z.toml")
    keys = [key for key, _ in caught.value.problems]
    assert keys == [
        "authentication.client_ip",
        "authentication.helo",
        "authentication.dns.'example.com'",
        "authentication.dns.'a..b'",
    ]


def test_names_match_without_case_or_trailing_dot_and_other_tables_are_ignored() -> None:
    document = {
        "outcomes": {"default": "deliver"},
        "authentication": {
            "client_ip": "2001:db8::1",
            "enforce": True,  # the fake ESP's own key: not this side's business
            "dns": {"Example.COM.": ["v=spf1 -all"]},
        },
    }
    zone = parse_zone(document, "z.toml")
    assert zone.txt("example.com") == ("v=spf1 -all",)
    assert zone.txt("EXAMPLE.com.") == ("v=spf1 -all",)
    assert zone.txt("other.example") == ()
    assert zone.helo == DEFAULT_HELO


def test_unreadable_and_non_toml_files_are_zone_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ZoneError, match=r"missing\.toml: \(file\): cannot be read"):
        load_zone(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[authentication\n")
    with pytest.raises(ZoneError, match="is not valid TOML"):
        load_zone(bad)
