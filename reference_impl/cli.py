"""The `bounceback` command: one click group, each subcommand defined beside the code it drives."""

from __future__ import annotations

import click

from reference_impl.certify.cli import certify
from reference_impl.receiver.cli import receiver
from reference_impl.sender.cli import demo, provider_group, send
from simulator.conformance.cli import conform, fuzz_command
from simulator.esp.catalog_cli import protocol, scenarios
from simulator.esp.cli import esp


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bounceback")
def main() -> None:
    """Test harness and ESP simulator for the v2 SMTP callback protocol."""


main.add_command(receiver)
main.add_command(esp)
main.add_command(certify)
main.add_command(conform)
main.add_command(fuzz_command)
main.add_command(provider_group)
main.add_command(send)
main.add_command(demo)
main.add_command(scenarios)
main.add_command(protocol)


if __name__ == "__main__":
    main()
