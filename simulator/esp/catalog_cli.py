"""`bounceback scenarios` and `bounceback protocol`: what ships in the wheel, readable from a shell.

An installed user has no `scenarios/` folder to browse and no docs/PROTOCOL.md to open, yet every
command takes shipped names and every failure quotes "PROTOCOL.md section N". These commands print
both, so a user can copy a shipped file and edit it, or read the section a message points at. A
name that ships nothing raises the catalog's `SimulatorError`, which `bounceback` turns into one
line and exit 2.
"""

from __future__ import annotations

import tomllib

import click

from simulator.esp.catalog import (
    KINDS,
    PLAN,
    USES,
    find_shipped,
    protocol_text,
    shipped,
)

HEADINGS = {
    "scenario": "Scenarios",
    "vendor profile": "Vendor profiles (the fake ESP playing a vendor, to rehearse certification)",
    "certification plan": "Certification plans",
    "provider settings": "Provider settings (the SMTP account a plan or a campaign sends through)",
}


@click.group("scenarios", invoke_without_command=True)
@click.pass_context
def scenarios(context: click.Context) -> None:
    """List the shipped scenarios, certification plans, vendor profiles and provider settings.

    Every name listed works where a file is asked for (`bounceback esp --scenario smoke`,
    `bounceback certify certification/fake-esp`); `bounceback scenarios show NAME > mine.toml`
    gives a copy to edit, which then runs as `--scenario mine.toml`.
    """
    if context.invoked_subcommand is not None:
        return
    entries = shipped()
    for kind in KINDS:
        group = [entry for entry in entries if entry.kind == kind]
        if not group:
            continue
        width = max(len(entry.name) for entry in group)
        click.echo(f"{HEADINGS[kind]}: {USES[kind].format(name='NAME')}")
        for entry in group:
            click.echo(f"  {entry.name:<{width}}  {entry.description}")
        click.echo()
    click.echo("Print one, to copy and edit: bounceback scenarios show NAME")


@scenarios.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print the shipped file NAME exactly as it ships (comments included).

    Redirect it to a file to start your own: `bounceback scenarios show smoke > mine.toml`.
    """
    text = (entry := find_shipped(name)).text()
    click.echo(text, nl=not text.endswith("\n"))
    if entry.kind == PLAN:
        provider = tomllib.loads(text).get("provider")
        if isinstance(provider, str):
            # On stderr, so `show ... > plan.toml` stays a clean copy of the file.
            shipped_provider = "certification/" + provider.removesuffix(".toml")
            click.echo(
                f"# this plan's provider {provider!r} is relative to the plan's folder; copy it "
                f"too: bounceback scenarios show {shipped_provider}",
                err=True,
            )


@click.command("protocol")
@click.argument("section", required=False)
def protocol(section: str | None) -> None:
    """Print PROTOCOL.md, the project's reading of the protocol, or only SECTION (e.g. 4).

    Failure messages quote "PROTOCOL.md section N"; `bounceback protocol N` prints that section.
    A requirement id such as CB-4.2 selects its section too; an unknown section lists them all.
    """
    click.echo(protocol_text(section), nl=False)
