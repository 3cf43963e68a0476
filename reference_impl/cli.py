"""The `bounceback` command: one click group, each subcommand defined beside the code it drives.

Errors raised on purpose (`PlatformError` on the platform side, `SimulatorError` on the ESP side)
are an operator's to fix, so they end here as one line on stderr, `bounceback <command>: error:
...`, and exit 2; anything else is a bug and keeps its traceback. Every command's `--help` ends
with the exit codes.
"""

from __future__ import annotations

from typing import IO, Any

import click

from reference_impl.certify.cli import certify
from reference_impl.errors import EXIT_OPERATOR, PlatformError
from reference_impl.receiver.cli import receiver
from reference_impl.sender.cli import demo, provider_group, send
from simulator.conformance.cli import conform, fuzz_command
from simulator.errors import SimulatorError
from simulator.esp.catalog_cli import protocol, scenarios
from simulator.esp.cli import esp
from simulator.load.cli import load

__all__ = ["EXIT_CODES", "main"]

PROG = "bounceback"
EXIT_CODES = (
    "Exit codes: 0 success; 1 a failed verdict (a check, a campaign or a certification failed);"
    " 2 a usage or operator error (a bad option or file, a port in use, an unreachable host)."
)
_COMMAND = "bounceback.command"


class OperatorError(click.ClickException):
    """An error raised on purpose, shown as one line naming the command, exit 2."""

    exit_code = EXIT_OPERATOR

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{self.command}: error: {self.message}", file=file, err=True)


class _Bounceback(click.Group):
    """The root group: remembers which (sub)command runs, and turns the two roots into exit 2."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        words = [PROG, name or ""]
        inner, remaining = command, rest
        # A nested group (`provider`) takes no options of its own: its next word is its command.
        while isinstance(inner, click.Group) and remaining:
            inner = inner.get_command(ctx, remaining[0])
            if inner is None:
                break
            words.append(remaining[0])
            remaining = remaining[1:]
        ctx.meta[_COMMAND] = " ".join(words)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PlatformError, SimulatorError) as exc:
            raise OperatorError(ctx.meta.get(_COMMAND, PROG), str(exc)) from exc


def _document_exit_codes(command: click.Command) -> None:
    """Append the exit codes to the epilog of `command` and of every command below it."""
    if EXIT_CODES not in (command.epilog or ""):
        command.epilog = f"{command.epilog}\n\n{EXIT_CODES}" if command.epilog else EXIT_CODES
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _document_exit_codes(sub)


@click.group(cls=_Bounceback, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bounceback")
def main() -> None:
    """Test harness and ESP simulator for the v2 SMTP callback protocol."""


for _command in (
    receiver,
    esp,
    certify,
    conform,
    fuzz_command,
    provider_group,
    send,
    demo,
    scenarios,
    protocol,
    load,
):
    main.add_command(_command)
_document_exit_codes(main)


if __name__ == "__main__":
    main()
