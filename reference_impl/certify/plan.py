"""The certification plan: the vendor, its test addresses, what each must trigger, how long to wait.

A plan is a TOML file (see docs/certification.md). Loading validates every key and reports all
problems at once, each naming the key, so a vendor fixes its plan in one pass. Pure: `parse_plan`
takes the decoded TOML, `load_plan` only adds reading the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import DEFAULT_LABEL

__all__ = [
    "DELIVERED",
    "OUTCOMES",
    "RESPOND_500",
    "RESPOND_SLOW",
    "Plan",
    "PlanError",
    "ProbeSpec",
    "load_plan",
    "parse_plan",
]

OUTCOMES = ("hard_bounce", "soft_bounce", "spam", "unsubscribed", "delivered")
DELIVERED = "delivered"

RESPOND_500 = "500"
RESPOND_SLOW = "slow"
RESPONSES = (RESPOND_500, RESPOND_SLOW)

COUNT_PLACEHOLDER = "{n}"
MAX_PROBES = 5000
MAX_META_LENGTH = 4000
DEFAULT_ACCOUNT_ID = 1568798080
DEFAULT_DEADLINE_SECONDS = 300.0
DEFAULT_SETTLE_SECONDS = 2.0
DEFAULT_SLOW_RESPONSE_SECONDS = 30.0

TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "provider",
        "callback_url",
        "deadline_seconds",
        "settle_seconds",
        "slow_response_seconds",
        "account_id",
        "label",
        "probe",
    }
)

PROBE_KEYS = frozenset({"id", "to", "expect", "meta_length", "respond", "count", "relay_fold"})
# A relay breaks a header line past 998 characters; "X-CleverTap_META: " takes 18 of them.
MIN_RELAY_META_LENGTH = 998 - len("X-CleverTap_META: ") + 1


class PlanError(PlatformError, ValueError):
    """A plan is invalid; `problems` lists every `(key, reason)` found, not only the first."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        if len(problems) == 1:
            message = f"certification plan {source}: {problems[0][0]}: {problems[0][1]}"
        else:
            lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
            message = (
                f"certification plan {source} has {len(problems)} problems; fix these keys:\n"
                f"{lines}"
            )
        super().__init__(message)
        self.source = source
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe message: a recipient at the vendor and the outcome that address must trigger."""

    id: str
    to: str
    expect: str
    meta_length: int | None = None
    respond: str | None = None
    relay_fold: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated plan; `probes` is already expanded (a `count` probe becomes `count` probes)."""

    name: str
    provider: Path | None
    callback_url: str
    probes: tuple[ProbeSpec, ...]
    description: str = ""
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    slow_response_seconds: float = DEFAULT_SLOW_RESPONSE_SECONDS
    account_id: int = DEFAULT_ACCOUNT_ID
    label: str = DEFAULT_LABEL
    source: str = "<plan>"


def _number(
    data: dict[str, Any], key: str, default: float, problems: list[tuple[str, str]]
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        problems.append((key, f"must be a positive number of seconds, got {value!r}"))
        return default
    return float(value)


def _string(
    data: dict[str, Any], key: str, problems: list[tuple[str, str]], *, required: bool = True
) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.append((key, "is required and must be a non-empty string"))
        return ""
    return value


def _probe_specs(index: int, raw: object, problems: list[tuple[str, str]]) -> list[ProbeSpec]:
    where = f"probe[{index}]"
    if not isinstance(raw, dict):
        problems.append((where, "must be a table ([[probe]])"))
        return []
    for key in sorted(set(raw) - PROBE_KEYS):
        problems.append(
            (f"{where}.{key}", f"unknown key; known keys: {', '.join(sorted(PROBE_KEYS))}")
        )
    before = len(problems)
    probe_id = raw.get("id")
    if (
        not isinstance(probe_id, str)
        or not probe_id
        or not probe_id.isprintable()
        or " " in probe_id
    ):
        problems.append((f"{where}.id", "is required: a non-empty name without spaces"))
    to = raw.get("to")
    if not isinstance(to, str) or "@" not in to or any(c.isspace() for c in to):
        problems.append((f"{where}.to", f"must be an email address without spaces, got {to!r}"))
    expect = raw.get("expect")
    if expect not in OUTCOMES:
        problems.append(
            (f"{where}.expect", f"must be one of {', '.join(OUTCOMES)}, got {expect!r}")
        )
    meta_length = raw.get("meta_length")
    if meta_length is not None and (
        isinstance(meta_length, bool)
        or not isinstance(meta_length, int)
        or not 0 < meta_length <= MAX_META_LENGTH
    ):
        problems.append((f"{where}.meta_length", f"must be an integer from 1 to {MAX_META_LENGTH}"))
    respond = raw.get("respond")
    if respond is not None and respond not in RESPONSES:
        problems.append(
            (f"{where}.respond", f"must be one of {', '.join(RESPONSES)}, got {respond!r}")
        )
    if respond is not None and expect == DELIVERED:
        problems.append(
            (
                f"{where}.respond",
                "needs a probe that triggers a callback; 'delivered' may trigger none",
            )
        )
    relay_fold = raw.get("relay_fold", False)
    if not isinstance(relay_fold, bool):
        problems.append((f"{where}.relay_fold", f"must be true or false, got {relay_fold!r}"))
    elif relay_fold and not (isinstance(meta_length, int) and meta_length >= MIN_RELAY_META_LENGTH):
        problems.append(
            (
                f"{where}.relay_fold",
                f"needs meta_length of at least {MIN_RELAY_META_LENGTH}: a relay folds only a"
                " header line over 998 characters",
            )
        )
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PROBES:
        problems.append((f"{where}.count", f"must be an integer from 1 to {MAX_PROBES}"))
        count = 1
    if count > 1 and isinstance(to, str) and COUNT_PLACEHOLDER not in to:
        problems.append(
            (f"{where}.to", f"needs {COUNT_PLACEHOLDER} when count > 1, so addresses differ")
        )
    if count > 1 and respond is not None:
        problems.append((f"{where}.respond", "is for a single probe; use count = 1"))
    if len(problems) > before:
        return []
    if count == 1:
        return [
            ProbeSpec(
                probe_id,
                to.replace(COUNT_PLACEHOLDER, "1"),
                expect,
                meta_length,
                respond,
                relay_fold is True,
            )
        ]
    width = len(str(count))
    return [
        ProbeSpec(
            f"{probe_id}-{n:0{width}d}",
            to.replace(COUNT_PLACEHOLDER, f"{n:0{width}d}"),
            expect,
            meta_length,
            None,
            relay_fold is True,
        )
        for n in range(1, count + 1)
    ]


def parse_plan(data: dict[str, Any], *, source: str = "<plan>", base: Path | None = None) -> Plan:
    """Validate decoded TOML into a `Plan`, raising `PlanError` listing every problem."""
    problems: list[tuple[str, str]] = []
    for key in sorted(set(data) - TOP_KEYS):
        problems.append((key, f"unknown key; known keys: {', '.join(sorted(TOP_KEYS))}"))
    name = _string(data, "name", problems)
    description = _string(data, "description", problems, required=False)
    callback_url = _string(data, "callback_url", problems)
    if callback_url and not callback_url.startswith(("http://", "https://")):
        problems.append(
            ("callback_url", f"must be an http:// or https:// URL, got {callback_url!r}")
        )
    provider: Path | None = None
    if "provider" in data:
        raw_provider = _string(data, "provider", problems)
        if raw_provider:
            provider = Path(raw_provider)
            if base is not None and not provider.is_absolute():
                provider = base / provider
    deadline = _number(data, "deadline_seconds", DEFAULT_DEADLINE_SECONDS, problems)
    settle = _number(data, "settle_seconds", DEFAULT_SETTLE_SECONDS, problems)
    slow = _number(data, "slow_response_seconds", DEFAULT_SLOW_RESPONSE_SECONDS, problems)
    account_id = data.get("account_id", DEFAULT_ACCOUNT_ID)
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id < 0:
        problems.append(("account_id", f"must be a non-negative integer, got {account_id!r}"))
    label = data.get("label", DEFAULT_LABEL)
    if (
        not isinstance(label, str)
        or not label
        or "|" in label
        or not label.isascii()
        or any(not 0x21 <= ord(c) <= 0x7E for c in label)
    ):
        problems.append(("label", "must be visible ASCII without spaces or '|'"))
    raw_probes = data.get("probe")
    probes: list[ProbeSpec] = []
    if not isinstance(raw_probes, list) or not raw_probes:
        problems.append(("probe", "at least one [[probe]] table is required"))
    else:
        for index, raw in enumerate(raw_probes):
            probes.extend(_probe_specs(index, raw, problems))
    seen: set[str] = set()
    for probe in probes:
        if probe.id in seen:
            problems.append((f"probe id {probe.id!r}", "is used twice; probe ids must be unique"))
        seen.add(probe.id)
    if len(probes) > MAX_PROBES:
        problems.append(("probe", f"{len(probes)} probes after expansion; at most {MAX_PROBES}"))
    if sum(1 for p in probes if p.respond == RESPOND_500) > 1:
        problems.append(("probe.respond", "at most one probe may ask for a 500"))
    if sum(1 for p in probes if p.respond == RESPOND_SLOW) > 1:
        problems.append(("probe.respond", "at most one probe may ask for a slow response"))
    if problems:
        raise PlanError(source, problems)
    return Plan(
        name=name,
        provider=provider,
        callback_url=callback_url,
        probes=tuple(probes),
        description=description,
        deadline_seconds=deadline,
        settle_seconds=settle,
        slow_response_seconds=slow,
        account_id=account_id,
        label=label,
        source=source,
    )


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; a relative `provider` path is taken from the plan's folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(str(path), [("file", f"cannot be read: {exc.strerror or exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(str(path), [("file", f"is not valid TOML: {exc}")]) from exc
    return parse_plan(data, source=str(path), base=path.parent)
