"""`bounceback scenarios` and `bounceback protocol` as a user runs them: exit 0, or 2 and a line."""

from __future__ import annotations

import tomllib

from click.testing import CliRunner

from reference_impl.cli import main
from simulator.esp.catalog import shipped


def test_scenarios_lists_every_shipped_file_with_its_description() -> None:
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0, result.output
    for entry in shipped():
        assert f"{entry.name}  " in result.output
        assert entry.description in result.output
    assert "bounceback certify NAME" in result.output


def test_scenarios_show_prints_the_file_as_shipped() -> None:
    """The copy a user edits is the file itself, comments included, and parses as TOML."""
    result = CliRunner().invoke(main, ["scenarios", "show", "certification/vendors/never-retries"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Misbehaving vendor")
    assert tomllib.loads(result.stdout)["name"] == "never-retries"


def test_scenarios_show_of_a_plan_names_its_provider_on_stderr_only() -> None:
    result = CliRunner().invoke(main, ["scenarios", "show", "certification/fake-esp"])
    assert result.exit_code == 0
    assert "bounceback scenarios show certification/providers/fake-esp" in result.stderr
    assert tomllib.loads(result.stdout)["provider"] == "providers/fake-esp.toml"


def test_scenarios_show_of_an_unknown_name_is_one_line_with_exit_2() -> None:
    result = CliRunner().invoke(main, ["scenarios", "show", "mixd"])
    assert result.exit_code == 2
    assert "did you mean 'mixed'?" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_protocol_prints_a_section_and_refuses_an_unknown_one() -> None:
    result = CliRunner().invoke(main, ["protocol", "5"])
    assert result.exit_code == 0
    assert result.output.startswith("## 5. ")
    unknown = CliRunner().invoke(main, ["protocol", "12"])
    assert unknown.exit_code == 2
    assert "no section '12'" in unknown.output
