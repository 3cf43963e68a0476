"""The `bounceback` group: exit codes in every `--help`; either error root is one line, exit 2.

Issue 10: "Operator mistakes: one line, no traceback, exit code 2 (1 = failed verdict, 0 = ok)".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reference_impl import cli
from reference_impl.errors import EXIT_FAILED, EXIT_OPERATOR, PlatformError
from simulator.errors import SimulatorError


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_documents_the_exit_codes_in_its_help() -> None:
    paths = [(), *_commands(cli.main)]
    assert len(paths) > 8
    for path in paths:
        result = CliRunner().invoke(cli.main, [*path, "--help"], terminal_width=2000)
        assert result.exit_code == 0, (path, result.output)
        assert cli.EXIT_CODES in " ".join(result.output.split()), path


def test_a_platform_error_is_one_line_naming_the_command_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "providers.toml"
    result = CliRunner().invoke(cli.main, ["provider", "check", str(missing), "--offline"])
    assert result.exit_code == EXIT_OPERATOR
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        f"bounceback provider check: error: provider file {missing}: (file): cannot be read:"
        " No such file or directory"
    )


@pytest.mark.parametrize("error", [PlatformError, SimulatorError])
def test_both_roots_are_caught_and_nothing_else_is(error: type[Exception]) -> None:
    """A bug (any other exception) keeps its traceback; a verdict's exit 1 passes through."""
    group = cli._Bounceback("bounceback")

    @group.command("raises")
    @click.argument("kind")
    def raises(kind: str) -> None:
        if kind == "root":
            raise error("the settings are wrong; fix them")
        if kind == "verdict":
            raise SystemExit(EXIT_FAILED)
        raise RuntimeError("a bug")

    result = CliRunner().invoke(group, ["raises", "root"])
    assert (result.exit_code, result.output) == (
        EXIT_OPERATOR,
        "bounceback raises: error: the settings are wrong; fix them\n",
    )
    assert CliRunner().invoke(group, ["raises", "verdict"]).exit_code == EXIT_FAILED
    bug = CliRunner().invoke(group, ["raises", "bug"])
    assert isinstance(bug.exception, RuntimeError)
