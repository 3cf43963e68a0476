"""What ships in the wheel: scenarios, certification plans, vendor profiles, providers, PROTOCOL.md.

An installed user has no checkout, so every file a command can be pointed at by name travels as
package data and is found here through importlib.resources, never relative to a source file: the
top-level `scenarios/` folder installs as the `bounceback_scenarios` package, `examples/` as
`bounceback_examples` and PROTOCOL.md as `bounceback_docs` (see pyproject.toml). A shipped file is
named by its path in `scenarios/` without `.toml` (`smoke`, `certification/vendors/well-behaved`),
an example as `examples/providers`; the kind follows from the folder, so a plan given where a
scenario belongs is refused with a word on where it does belong. Unknown names
get the closest shipped one and the list. The platform side's `certify` finds plans here too: this
module holds file lookup only, no protocol rule.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from simulator.errors import SimulatorError

__all__ = [
    "KINDS",
    "PLAN",
    "PROVIDER",
    "SCENARIO",
    "SCENARIO_KINDS",
    "VENDOR",
    "ProtocolSectionError",
    "Shipped",
    "UnknownShipped",
    "find_shipped",
    "protocol_sections",
    "protocol_text",
    "resolve_path",
    "shipped",
]

SCENARIO_PACKAGE = "bounceback_scenarios"
EXAMPLES_PACKAGE = "bounceback_examples"
DOCS_PACKAGE = "bounceback_docs"
PROTOCOL_FILE = "PROTOCOL.md"
SUFFIX = ".toml"
# Checkout-relative spellings (the `scenarios/` folder, `.toml`) name the same shipped file.
CHECKOUT_PREFIX = "scenarios/"

SCENARIO = "scenario"
VENDOR = "vendor profile"
PLAN = "certification plan"
PROVIDER = "provider settings"
KINDS = (SCENARIO, PLAN, VENDOR, PROVIDER)
"""In listing order; each kind is one folder of `scenarios/`."""
SCENARIO_KINDS = (SCENARIO, VENDOR)
"""What `--scenario` runs: a vendor profile is a scenario in which the fake ESP plays a vendor."""
FOLDERS = {(): SCENARIO, ("certification",): PLAN}
FOLDERS |= {("certification", "vendors"): VENDOR, ("certification", "providers"): PROVIDER}
FOLDERS |= {("examples",): PROVIDER}
# Each data package and the folder its files are named under.
ROOTS = ((SCENARIO_PACKAGE, ()), (EXAMPLES_PACKAGE, ("examples",)))
USES = {
    SCENARIO: "bounceback esp --scenario {name}",
    VENDOR: "bounceback esp --scenario {name}",
    PLAN: "bounceback certify {name}",
    PROVIDER: "a plan's `provider` key, bounceback provider check FILE",
}
_SECTION = re.compile(r"^## (\d+)\. (.+)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class UnknownShipped(SimulatorError, LookupError):
    """No shipped file has that name (or it is of another kind); the message lists what ships.

    `reason` is the message without the name, for errors that already name it (a scenario's).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r} {reason}")
        self.name = name
        self.reason = reason


class ProtocolSectionError(SimulatorError, LookupError):
    """PROTOCOL.md has no such section; the message lists the sections it has."""


@dataclass(frozen=True, slots=True)
class Shipped:
    """One shipped file: the name a command takes, its kind, the one line `scenarios` lists."""

    name: str
    kind: str
    description: str
    resource: Traversable

    def text(self) -> str:
        return self.resource.read_text(encoding="utf-8")


def _one_line(text: str) -> str:
    """The first sentence of a (possibly multi-line) description, on one line."""
    flat = " ".join(text.split())
    return _SENTENCE_END.split(flat, maxsplit=1)[0]


def _description(text: str) -> str:
    """The file's `description` key, else its first comment line, so every file lists with one."""
    try:
        value = tomllib.loads(text).get("description")
    except tomllib.TOMLDecodeError:
        value = None
    if isinstance(value, str) and value.strip():
        return _one_line(value)
    for line in text.splitlines():
        if line.startswith("#"):
            return _one_line(line.lstrip("# "))
    return ""


def _walk(folder: Traversable, parts: tuple[str, ...]) -> list[Shipped]:
    found = []
    for item in sorted(folder.iterdir(), key=lambda item: item.name):
        if item.is_dir() and (*parts, item.name) in FOLDERS:
            found.extend(_walk(item, (*parts, item.name)))
        elif item.is_file() and item.name.endswith(SUFFIX) and parts in FOLDERS:
            name = "/".join((*parts, item.name.removesuffix(SUFFIX)))
            text = item.read_text(encoding="utf-8")
            found.append(Shipped(name, FOLDERS[parts], _description(text), item))
    return found


def _package(name: str) -> Traversable:
    """A data package's files; an install that predates it gets told to reinstall, not a trace."""
    try:
        return resources.files(name)
    except ModuleNotFoundError as exc:
        raise UnknownShipped(
            name,
            "(a data package) is not installed: reinstall bounceback "
            "(pip install -e . in a checkout, `make install` here)",
        ) from exc


def shipped(kinds: tuple[str, ...] = KINDS) -> list[Shipped]:
    """Every shipped file of the given kinds, in `KINDS` order, then by name."""
    everything = [entry for name, parts in ROOTS for entry in _walk(_package(name), parts)]
    return sorted(
        (entry for entry in everything if entry.kind in kinds),
        key=lambda entry: (KINDS.index(entry.kind), entry.name),
    )


def _normalized(name: str) -> str:
    return name.strip().removeprefix("./").removeprefix(CHECKOUT_PREFIX).removesuffix(SUFFIX)


def _suggestion(name: str, candidates: list[Shipped]) -> str:
    """The closest name, also by its last part alone (`well-behaved` for the vendor profile)."""
    names = [entry.name for entry in candidates]
    close = difflib.get_close_matches(name, names, n=1)
    if not close:
        tails = {full.rsplit("/", 1)[-1]: full for full in names}
        close = [tails[t] for t in difflib.get_close_matches(name.rsplit("/", 1)[-1], tails, n=1)]
    return f"did you mean {close[0]!r}? " if close else ""


def find_shipped(name: str, kinds: tuple[str, ...] = KINDS) -> Shipped:
    """The shipped file called `name` (`smoke`, `certification/fake-esp`, `.toml` optional)."""
    wanted = _normalized(name)
    everything = shipped()
    for entry in everything:
        if entry.name == wanted:
            if entry.kind in kinds:
                return entry
            raise UnknownShipped(
                entry.name,
                f"is a shipped {entry.kind}, not a {' or '.join(kinds)}; "
                f"use it with {USES[entry.kind].format(name=entry.name)}",
            )
    candidates = [entry for entry in everything if entry.kind in kinds]
    what = "anything shipped" if set(kinds) == set(KINDS) else f"a shipped {' or '.join(kinds)}"
    listing = ", ".join(entry.name for entry in candidates)
    raise UnknownShipped(
        name,
        f"is neither a file nor the name of {what}; "
        f"{_suggestion(wanted, candidates)}"
        f"shipped: {listing} (`bounceback scenarios` describes each)",
    )


def _looks_like_a_path(value: str) -> bool:
    """An absolute or explicitly relative path is never taken for a shipped name."""
    return value.startswith(("/", "./", "../", "~")) or Path(value).is_absolute()


def resolve_path(value: str | Path, kinds: tuple[str, ...]) -> Path:
    """A file the user named: `value` itself if it is a file, else the shipped file of that name.

    Returns a filesystem path because a plan names its provider file relative to its own folder;
    pip installs wheels unpacked, so the shipped files are files.
    """
    candidate = Path(value).expanduser()
    if candidate.is_file() or isinstance(value, Path) or _looks_like_a_path(str(value)):
        return candidate
    entry = find_shipped(str(value), kinds)
    if not isinstance(entry.resource, Path):
        raise UnknownShipped(
            entry.name, "ships inside a zipped install; install bounceback unpacked (pip does)"
        )
    return entry.resource


def _protocol() -> str:
    return _package(DOCS_PACKAGE).joinpath(PROTOCOL_FILE).read_text(encoding="utf-8")


def protocol_sections() -> list[tuple[str, str]]:
    """The numbered sections of PROTOCOL.md, as (number, title)."""
    return [m.groups() for m in map(_SECTION.match, _protocol().splitlines()) if m is not None]


def protocol_text(section: str | None = None) -> str:
    """PROTOCOL.md, or one of its sections (`4`, or `4.2` for a requirement of section 4)."""
    text = _protocol()
    if section is None:
        return text
    number = section.strip().removeprefix("CB-").split(".")[0]
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _heading(line) == number]
    if not starts:
        known = "; ".join(f"{n} {title}" for n, title in protocol_sections())
        raise ProtocolSectionError(f"PROTOCOL.md has no section {section!r}; it has: {known}")
    start = starts[0]
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith(("# ", "## "))),
        len(lines),
    )
    return "\n".join(lines[start:end]).rstrip() + "\n"


def _heading(line: str) -> str | None:
    match = _SECTION.match(line)
    return match.group(1) if match else None
