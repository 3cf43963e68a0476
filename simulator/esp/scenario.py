"""Scenario files: TOML that says what the fake ESP does with each recipient, stage and callback.

Loading validates everything up front, so a typo in a scenario fails at start, instead of
silently producing a run that tests nothing; every problem of the file is reported at once, each
with its key and reason (and the closest allowed key or choice for an unknown one). The ESP side
keeps its own validator in the same style as the platform's provider files and plans, since the
two sides never import each other's validation. The format and every
key are described in docs/simulator.md.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from simulator.errors import SimulatorError
from simulator.esp.auth.rules import ACTIONS as ENFORCEMENT_ACTIONS
from simulator.esp.auth.rules import OFF, AuthSettings, Blocklist, Enforcement
from simulator.esp.auth.zone import Zone, normal_name
from simulator.esp.catalog import SCENARIO_KINDS, UnknownShipped, resolve_path
from simulator.esp.headers import REMOVE, UNFOLDINGS

OUTCOMES = ("delivered", "hard_bounce", "soft_bounce", "spam", "unsubscribed")
DELIVERED = "delivered"
MUTATIONS = ("drop_meta", "drop_type", "unknown_type", "malformed_email")
STAGES = ("connect", "helo", "auth", "mail", "rcpt", "data")
ACTIONS = ("reply", "drop", "stall", "delay")
MISSING_META_POLICIES = ("omit", "drop")
ENCODED_META_POLICIES = ("decode", "echo")
META_MANGLINGS = ("none", "python-email")
MAX_BATCH = 1000
# A deliberately oversized batch is allowed (for the 1001 limit test), but not absurd ones.
MAX_OVERSIZE_BATCH = 5000
MAX_MESSAGE_SIZE_CEILING = 50 * 1024 * 1024
DEFAULT_MESSAGE_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_RECIPIENTS = 1000
# Mailgun's webhook retry schedule (PROTOCOL.md section 7): 5m, 10m, 15m, 1h, 2h, 4h.
MAILGUN_SCHEDULE = (300.0, 600.0, 900.0, 3600.0, 7200.0, 14400.0)
DEFAULT_JITTER = 0.1
DEFAULT_TIMEOUT = 10.0
FILE = "(file)"
"""The key of a problem with the file as a whole (missing, unreadable, not TOML)."""
# Callback bodies stay well under the 8 MiB a receiver commonly accepts (PROTOCOL.md section 7).
DEFAULT_BATCH_BYTES = 1024 * 1024
MAX_BATCH_BYTES = 64 * 1024 * 1024
# What one spool may hold before SMTP answers 452, and the callback bytes one message may cause
# (its echoed meta times its recipients) before it is refused with 552.
DEFAULT_SPOOL_QUOTA = 1024 * 1024 * 1024
DEFAULT_MESSAGE_QUOTA = 64 * 1024 * 1024
MAX_QUOTA = 1024 * 1024 * 1024 * 1024
DEFAULT_AUTH_FAILURES = 3
# Open SMTP sessions at once (Postfix's default smtpd process limit). Each may hold a message of up
# to max_message_size in memory while it arrives, so this is what bounds the ESP's memory.
DEFAULT_MAX_CONNECTIONS = 100
MAX_CONNECTIONS_CEILING = 10_000
_REPLY = re.compile(r"[2-5][0-9]{2}( .*)?")
# A DNS name as a zone or a blocklist writes it: labels of letters, digits, hyphens and (for
# `_dmarc`, `_domainkey`) underscores; a trailing dot is allowed.
_DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
NOT_DNS_NAME = "{value!r} is not a DNS name (dot-separated labels of letters, digits, - and _)"
NOT_IP = "{value!r} is not an IP address (e.g. '192.0.2.10')"
NOT_NETWORK = "{value!r} is not an IP address or network (e.g. '203.0.113.7', '198.51.100.0/24')"
NOT_TXT_LIST = 'must be a list of TXT records, each one string, e.g. ["v=spf1 ip4:192.0.2.10 -all"]'
SAME_NAME = "names the same DNS name as {other!r} (names ignore case and a trailing dot)"
NEEDS_AUTHENTICATION = (
    "{action!r} needs an [authentication] table: the DNS zone the verdicts are checked against"
)


class ScenarioError(SimulatorError, ValueError):
    """A scenario file is unreadable or invalid; `problems` lists every (key, reason) found.

    Like provider files and certification plans, a scenario is checked whole: one run of the
    loader names every bad key, so a user fixes the file in one pass.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        if len(problems) == 1:
            key, reason = problems[0]
            where = "" if key == FILE else f" key {key!r}:"
            message = f"scenario {source}:{where} {reason}"
        else:
            lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
            message = f"scenario {source} has {len(problems)} problems; fix these keys:\n{lines}"
        super().__init__(message)
        self.source = source
        self.problems = problems

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


@dataclass(frozen=True, slots=True)
class AddressRule:
    """Force an outcome for matching addresses, SES mailbox-simulator style."""

    match: str
    outcome: str
    description: str | None = None
    # Overrides callbacks.drop_rate for matching addresses (None: the scenario-wide rate).
    drop_rate: float | None = None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Answer one SMTP stage with a fault, for matching addresses or at a rate."""

    stage: str
    action: str = "reply"
    reply: str | None = None
    rate: float = 0.0
    match: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    max_message_size: int = DEFAULT_MESSAGE_SIZE
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    address_faults: bool = True
    faults: tuple[FaultRule, ...] = ()
    spool_quota: int = DEFAULT_SPOOL_QUOTA
    message_quota: int = DEFAULT_MESSAGE_QUOTA
    max_auth_failures: int = DEFAULT_AUTH_FAILURES
    max_connections: int = DEFAULT_MAX_CONNECTIONS


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    batch_sizes: tuple[int, ...] = (MAX_BATCH,)
    delay: float = 0.5
    duplicate_rate: float = 0.0
    duplicate_delay: float = 0.5
    reorder: bool = False
    report_delivered: bool = True
    missing_meta: str = "omit"
    meta_encoded_words: str = "decode"
    meta_mangling: str = "none"
    meta_unfolding: str = REMOVE
    drop_rate: float = 0.0
    mutations: dict[str, float] = field(default_factory=dict)
    extra_keys_rate: float = 0.0
    retry_schedule: tuple[float, ...] = MAILGUN_SCHEDULE
    jitter: float = DEFAULT_JITTER
    timeout: float = DEFAULT_TIMEOUT
    max_batch_bytes: int = DEFAULT_BATCH_BYTES


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    source: str
    outcomes: dict[str, float]
    rules: tuple[AddressRule, ...] = ()
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    # None: no [authentication] table, so nothing is verified and no header is added.
    authentication: AuthSettings | None = None
    blocklist: Blocklist = field(default_factory=Blocklist)
    enforcement: Enforcement = field(default_factory=Enforcement)


class _Reader:
    """Typed access to one TOML table that remembers where it is, for error messages.

    A bad value is recorded in the `problems` list shared by the whole file and replaced by its
    default, so reading goes on and every problem is found in one pass; the parse raises once,
    at the end, with all of them.
    """

    def __init__(self, source: str, prefix: str, table: Any, problems: list) -> None:
        self.source = source
        self.prefix = prefix
        self.problems: list[tuple[str, str]] = problems
        if not isinstance(table, dict):
            problems.append((prefix, f"must be a table, got {type(table).__name__}"))
            table = {}
        self.table = table

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> None:
        self.problems.append((self.key(name), reason))

    def mark(self) -> int:
        """How many problems the file had so far: a check of several keys runs only if none
        of them added one, so one typo is not reported a second time as a wrong sum."""
        return len(self.problems)

    def only(self, *allowed: str) -> None:
        for name in self.table:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(name, f"unknown key; {hint}allowed keys are {', '.join(allowed)}")

    def sub(self, name: str) -> _Reader:
        return _Reader(self.source, self.key(name), self.table.get(name, {}), self.problems)

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> Any:
        value = self.table.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {value!r}")
            return default
        if choices and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.fail(name, f"{value!r} is not one of {', '.join(choices)}{hint}")
            return default
        return value

    def number(self, name: str, default: float, low: float = 0.0, high: float = math.inf) -> float:
        value = self.table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, f"must be a number, got {value!r}")
            return float(default)
        if not low <= value <= high or math.isnan(value):
            self.fail(name, f"{value!r} is outside [{low}, {high}]")
            return float(default)
        return float(value)

    def rate(self, name: str, default: float = 0.0) -> float:
        return self.number(name, default, 0.0, 1.0)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be an integer, got {value!r}")
            return default
        if not low <= value <= high:
            self.fail(name, f"{value} is outside [{low}, {high}]")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, got {value!r}")
            return default
        return value

    def tables(self, name: str) -> list[_Reader]:
        value = self.table.get(name, [])
        if not isinstance(value, list):
            self.fail(name, "must be an array of tables ([[...]])")
            return []
        return [
            _Reader(self.source, f"{self.key(name)}[{i}]", item, self.problems)
            for i, item in enumerate(value)
        ]


def _outcomes(reader: _Reader, has_rules: bool) -> dict[str, float]:
    mark = reader.mark()
    reader.only(*OUTCOMES)
    rates = {name: reader.rate(name) for name in OUTCOMES}
    total = sum(rates.values())
    if not reader.table and has_rules:
        # An address-rules-only scenario (ses-simulator): unmatched addresses are delivered.
        return {name: (1.0 if name == DELIVERED else 0.0) for name in OUTCOMES}
    if reader.mark() == mark and not math.isclose(total, 1.0, abs_tol=1e-9):
        reader.problems.append((reader.prefix, f"rates must sum to 1, they sum to {total:.6g}"))
    return rates


def is_smtp_reply(text: str) -> bool:
    """`<code> <text>` with a 2xx to 5xx code: what a fault may answer, in a file or at runtime."""
    return _REPLY.fullmatch(text) is not None


def change_reader(table: Any, prefix: str, problems: list[tuple[str, str]]) -> _Reader:
    """A checker for one table of a runtime change (`controls.py`), with the types, ranges and
    did-you-mean hints of a scenario file's keys, so each rule is stated once."""
    return _Reader("", prefix, table, problems)


def outcome_rates(reader: _Reader) -> dict[str, float]:
    """The five outcome rates of a table, checked as a scenario's `[outcomes]` is (sum 1)."""
    return _outcomes(reader, has_rules=False)


def _rules(reader: _Reader) -> tuple[AddressRule, ...]:
    rules = []
    for rule in reader.tables("rules"):
        rule.only("match", "outcome", "description", "drop_rate")
        match = rule.string("match")
        if rule.table.get("match", "") == "":
            rule.fail("match", "is required: an address pattern such as 'bounce@'")
        outcome = rule.string("outcome", choices=OUTCOMES)
        if outcome is None and "outcome" not in rule.table:
            rule.fail("outcome", f"is required, one of {', '.join(OUTCOMES)}")
        drop_rate = rule.rate("drop_rate") if "drop_rate" in rule.table else None
        description = rule.string("description")
        if match and outcome:
            rules.append(AddressRule(match.lower(), outcome, description, drop_rate))
    return tuple(rules)


def _fault(reader: _Reader) -> FaultRule:
    reader.only("stage", "action", "reply", "rate", "match", "seconds")
    stage = reader.string("stage", choices=STAGES)
    if stage is None and "stage" not in reader.table:
        reader.fail("stage", f"is required, one of {', '.join(STAGES)}")
    action = reader.string("action", "reply", choices=ACTIONS)
    reply = reader.string("reply")
    # The raw value: an unknown action is one problem, not also a missing reply.
    if reader.table.get("action", "reply") == "reply" and "reply" not in reader.table:
        reader.fail("reply", "is required when action = 'reply' (e.g. '451 4.3.0 Try later')")
    if reply is not None and not is_smtp_reply(reply):
        reader.fail("reply", f"{reply!r} is not an SMTP reply ('<code> <text>')")
    mark = reader.mark()
    rate = reader.rate("rate")
    match = reader.string("match")
    if reader.mark() == mark and rate == 0.0 and not match:
        reader.fail("rate", "a fault needs a rate above 0 or a match pattern")
    if match and stage in ("connect", "helo"):
        reader.fail("match", f"stage {stage!r} happens before any address is known")
    if match and stage == "auth" and action != "reply":
        reader.fail("action", "a matched AUTH fault (on the login) can only reply")
    mark = reader.mark()
    seconds = reader.number("seconds", 0.0, 0.0, 3600.0)
    if reader.mark() == mark and action in ("stall", "delay") and seconds <= 0:
        reader.fail("seconds", f"action {action!r} needs seconds > 0")
    return FaultRule(
        stage or STAGES[0], action, reply, rate, match.lower() if match else None, seconds
    )


def _smtp(reader: _Reader) -> SmtpSettings:
    reader.only(
        "max_message_size",
        "max_recipients",
        "address_faults",
        "faults",
        "spool_quota",
        "message_quota",
        "max_auth_failures",
        "max_connections",
    )
    return SmtpSettings(
        max_message_size=reader.integer(
            "max_message_size", DEFAULT_MESSAGE_SIZE, 1024, MAX_MESSAGE_SIZE_CEILING
        ),
        max_recipients=reader.integer("max_recipients", DEFAULT_MAX_RECIPIENTS, 1, 100_000),
        address_faults=reader.boolean("address_faults", True),
        faults=tuple(_fault(item) for item in reader.tables("faults")),
        spool_quota=reader.integer("spool_quota", DEFAULT_SPOOL_QUOTA, 1024 * 1024, MAX_QUOTA),
        message_quota=reader.integer("message_quota", DEFAULT_MESSAGE_QUOTA, 1024, MAX_QUOTA),
        max_auth_failures=reader.integer("max_auth_failures", DEFAULT_AUTH_FAILURES, 1, 100),
        max_connections=reader.integer(
            "max_connections", DEFAULT_MAX_CONNECTIONS, 1, MAX_CONNECTIONS_CEILING
        ),
    )


def _batch_sizes(reader: _Reader) -> tuple[int, ...]:
    value = reader.table.get("batch_size", MAX_BATCH)
    sizes = value if isinstance(value, list) else [value]
    if not sizes:
        reader.fail("batch_size", "must not be an empty list")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            reader.fail("batch_size", f"{size!r} is not a positive integer")
        elif size > MAX_OVERSIZE_BATCH:
            reader.fail("batch_size", f"{size} is above {MAX_OVERSIZE_BATCH}")
    good = tuple(
        size
        for size in sizes
        if isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= MAX_OVERSIZE_BATCH
    )
    return good or (MAX_BATCH,)


def _schedule(reader: _Reader) -> tuple[float, ...]:
    value = reader.table.get("retry_schedule", list(MAILGUN_SCHEDULE))
    if not isinstance(value, list):
        reader.fail("retry_schedule", "must be a list of seconds, e.g. [300, 600, 900]")
        return MAILGUN_SCHEDULE
    schedule = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
            reader.fail("retry_schedule", f"{item!r} is not a number of seconds >= 0")
        else:
            schedule.append(float(item))
    return tuple(schedule)


CALLBACK_KEYS = (
    "batch_size",
    "delay",
    "duplicate_rate",
    "duplicate_delay",
    "reorder",
    "report_delivered",
    "missing_meta",
    "meta_encoded_words",
    "meta_mangling",
    "meta_unfolding",
    "drop_rate",
    "mutations",
    "retry_schedule",
    "jitter",
    "timeout",
    "max_batch_bytes",
)


def _callbacks(reader: _Reader) -> CallbackSettings:
    reader.only(*CALLBACK_KEYS)
    mutations_reader = reader.sub("mutations")
    mutations_reader.only(*MUTATIONS, "extra_keys")
    mark = reader.mark()
    mutations = {name: mutations_reader.rate(name) for name in MUTATIONS}
    if reader.mark() == mark and sum(mutations.values()) > 1.0 + 1e-9:
        reader.fail("mutations", "the rates of the failing mutations must sum to at most 1")
    encoded_words = reader.string("meta_encoded_words", "decode", choices=ENCODED_META_POLICIES)
    mangling = reader.string("meta_mangling", "none", choices=META_MANGLINGS)
    if mangling == "python-email" and encoded_words == "echo":
        # The email package decodes encoded-words when the header is set, so "echo" would be
        # silently undone: refuse the pair rather than run a scenario that tests something else.
        reader.fail(
            "meta_mangling",
            "'python-email' decodes RFC 2047 encoded-words itself, so it cannot be combined with"
            " meta_encoded_words = 'echo'; drop one of the two",
        )
    return CallbackSettings(
        batch_sizes=_batch_sizes(reader),
        delay=reader.number("delay", 0.5, 0.0, 3600.0),
        duplicate_rate=reader.rate("duplicate_rate"),
        duplicate_delay=reader.number("duplicate_delay", 0.5, 0.0, 3600.0),
        reorder=reader.boolean("reorder", False),
        report_delivered=reader.boolean("report_delivered", True),
        missing_meta=reader.string("missing_meta", "omit", choices=MISSING_META_POLICIES),
        meta_encoded_words=encoded_words,
        meta_mangling=mangling,
        meta_unfolding=reader.string("meta_unfolding", REMOVE, choices=UNFOLDINGS),
        drop_rate=reader.rate("drop_rate"),
        mutations={name: rate for name, rate in mutations.items() if rate > 0},
        extra_keys_rate=mutations_reader.rate("extra_keys"),
        retry_schedule=_schedule(reader),
        jitter=reader.rate("jitter", DEFAULT_JITTER),
        timeout=reader.number("timeout", DEFAULT_TIMEOUT, 0.01, 600.0),
        max_batch_bytes=reader.integer(
            "max_batch_bytes", DEFAULT_BATCH_BYTES, 1024, MAX_BATCH_BYTES
        ),
    )


def _dns_name(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return 0 < len(value) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def _zone(reader: _Reader) -> Zone:
    records: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for name, values in reader.table.items():
        key = f'{reader.prefix}."{name}"'
        if not _dns_name(name):
            reader.problems.append((key, NOT_DNS_NAME.format(value=name)))
            continue
        if normal_name(name) in seen:
            reader.problems.append((key, SAME_NAME.format(other=seen[normal_name(name)])))
            continue
        seen[normal_name(name)] = name
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            reader.problems.append((key, NOT_TXT_LIST))
            continue
        records[name] = values
    return Zone.of(records)


def _authentication(reader: _Reader) -> AuthSettings:
    reader.only("client_ip", "helo", "dns")
    client_ip = reader.string("client_ip")
    if client_ip is not None:
        try:
            client_ip = str(ipaddress.ip_address(client_ip))
        except ValueError:
            reader.fail("client_ip", NOT_IP.format(value=client_ip))
            client_ip = None
    helo = reader.string("helo")
    if helo is not None and not _dns_name(helo):
        reader.fail("helo", NOT_DNS_NAME.format(value=helo))
        helo = None
    return AuthSettings(zone=_zone(reader.sub("dns")), client_ip=client_ip, helo=helo)


def _strings(reader: _Reader, name: str) -> list[tuple[str, str]]:
    """(dotted key, value) of each string in list `name`; anything else is a problem."""
    value = reader.table.get(name, [])
    if not isinstance(value, list):
        reader.fail(name, "must be a list of strings")
        return []
    items = []
    for index, item in enumerate(value):
        key = f"{reader.key(name)}[{index}]"
        if isinstance(item, str):
            items.append((key, item))
        else:
            reader.problems.append((key, f"must be a string, got {item!r}"))
    return items


def _blocklist(reader: _Reader) -> Blocklist:
    reader.only("ips", "domains")
    ips = []
    for key, value in _strings(reader, "ips"):
        try:
            ips.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            reader.problems.append((key, NOT_NETWORK.format(value=value)))
    domains = []
    for key, value in _strings(reader, "domains"):
        if _dns_name(value):
            domains.append(normal_name(value))
        else:
            reader.problems.append((key, NOT_DNS_NAME.format(value=value)))
    return Blocklist(tuple(ips), tuple(domains))


# The rules and their default actions are the dataclass's, stated once in `auth/rules.py`.
ENFORCEMENT_KEYS = tuple(f.name for f in fields(Enforcement))


def _enforcement(reader: _Reader, authenticating: bool) -> Enforcement:
    reader.only(*ENFORCEMENT_KEYS)
    defaults = Enforcement()
    actions = {
        name: reader.string(name, getattr(defaults, name), choices=ENFORCEMENT_ACTIONS)
        for name in ENFORCEMENT_KEYS
    }
    if not authenticating:
        for name in ("unauthenticated", "unaligned"):
            if actions[name] != OFF:
                reader.fail(name, NEEDS_AUTHENTICATION.format(action=actions[name]))
    return Enforcement(**actions)


TOP_KEYS = (
    "name",
    "description",
    "outcomes",
    "rules",
    "smtp",
    "callbacks",
    "authentication",
    "blocklist",
    "enforcement",
)


def parse_scenario(data: dict[str, Any], source: str) -> Scenario:
    """Validate an already-parsed TOML document; `source` names it in errors.

    Raises one `ScenarioError` listing every problem of the file, each with its dotted key.
    """
    problems: list[tuple[str, str]] = []
    top = _Reader(source, "", data, problems)
    top.only(*TOP_KEYS)
    rules = _rules(top)
    authentication = (
        _authentication(top.sub("authentication")) if "authentication" in top.table else None
    )
    scenario = Scenario(
        name=top.string("name", Path(source).stem),
        description=top.string("description", ""),
        source=source,
        outcomes=_outcomes(top.sub("outcomes"), bool(top.table.get("rules"))),
        rules=rules,
        smtp=_smtp(top.sub("smtp")),
        callbacks=_callbacks(top.sub("callbacks")),
        authentication=authentication,
        blocklist=_blocklist(top.sub("blocklist")),
        enforcement=_enforcement(top.sub("enforcement"), authentication is not None),
    )
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file, or a shipped one by name (`smoke`, `certification/vendors/...`).

    A file of that name wins over a shipped one; an unknown name lists the shipped scenarios and
    suggests the closest, so a typo fails at start instead of running something else.
    """
    try:
        candidate = resolve_path(path, SCENARIO_KINDS)
    except UnknownShipped as exc:
        raise ScenarioError(str(path), [(FILE, exc.reason)]) from exc
    source = str(candidate)
    try:
        text = candidate.read_bytes()
    except OSError as exc:
        raise ScenarioError(source, [(FILE, f"cannot be read: {exc.strerror}")]) from exc
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(source, [(FILE, f"is not valid TOML: {exc}")]) from exc
    return parse_scenario(data, source)
