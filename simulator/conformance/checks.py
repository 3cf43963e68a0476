"""One check per requirement of the catalogue, each runnable against any `CallbackClient`.

A check sends requests, asks the ESP side's one model (`simulator.protocol.expect`) what must
come back, and compares the whole reply field by field with its `difference`. Only where a SHOULD
or a decision pins what the model leaves open (a wording, an entry's form) does a check give the
expected body, built with the model's own builders (`batch_reply`, `unprocessed_entry`,
`refusal`). On any failing difference it raises
`ConformanceFailure`, whose message quotes the requirement and shows what was sent, what came
back and every differing field. The pytest suite, `bounceback conform` and `bounceback fuzz` all
call these same functions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.conformance import strategies as cs
from simulator.conformance.client import Exchange
from simulator.conformance.context import ConformanceFailure, Context, fail_if
from simulator.conformance.requirements import BY_ID, Needs, Requirement, SourceKind
from simulator.conformance.stateful import run_subscription_machine
from simulator.protocol import expect as x
from simulator.protocol.difference import Difference, Matcher, difference, same

CheckFunction = Callable[[Context], None]
CHECKS: dict[str, CheckFunction] = {}


def check(requirement_id: str) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        if requirement_id not in BY_ID:
            raise KeyError(f"{requirement_id} is not in the requirement catalogue")
        CHECKS[requirement_id] = function
        return function

    return register


def run(requirement: Requirement, ctx: Context) -> None:
    """Run the check for `requirement`; raises `ConformanceFailure` or `StateUnavailable`.

    The failure's `grade` says whether it fails the run (FAIL) or is only reported (NON-STRICT,
    INFORMATIONAL); the caller decides what to do with each.
    """
    if requirement.needs is Needs.STATE:
        ctx.state()
    CHECKS[requirement.id](ctx)


def compare(expected_status: Any, expected_body: Any, exchange: Exchange) -> list[Difference]:
    """Every difference between the expected and actual status and body."""
    rows: list[Difference] = []
    if not same(expected_status, exchange.status):
        rows.append(Difference("status", expected_status, exchange.status))
    if exchange.json_error is not None:
        text = exchange.content.decode("utf-8", errors="backslashreplace")[:200]
        rows.append(Difference("body", "a JSON document", f"{exchange.json_error}: {text!r}"))
    else:
        rows.extend(difference(expected_body, exchange.json, "body"))
    return rows


def readings_for(ctx: Context, requirement: Requirement) -> bool:
    """Whether the model decides the open points as PROTOCOL.md reads them.

    Under `--strict`, and for a reading's own check (CB-4.17 asks what the reading says of a
    malformed email; CB-4.10, a reading that states an invariant, asks only what the page fixes).
    """
    source = requirement.source
    return ctx.strict or (source.kind is SourceKind.READING and not source.invariant)


def model_rows(ctx: Context, requirement: Requirement, exchange: Exchange) -> list[Difference]:
    """Every difference between the reply in `exchange` and what the model says it must be."""
    model = x.expected_response(exchange.request.content, readings=readings_for(ctx, requirement))
    return compare(*model.choose(exchange.status, exchange.json), exchange)


def verify(
    ctx: Context,
    requirement_id: str,
    case: str,
    payload: Any,
    *,
    status: Any = None,
    body: Any = None,
) -> Exchange:
    """Send `payload` and compare the whole reply with the model.

    `status` and `body` pin what a SHOULD or a decision asks where the model leaves the answer
    open (a wording, the form of an entry); they are built with the model's own builders.
    """
    requirement = BY_ID[requirement_id]
    exchange = ctx.client.post(payload)
    ctx.on_example()
    model = x.expected_response(exchange.request.content, readings=readings_for(ctx, requirement))
    model_status, model_body = model.choose(exchange.status, exchange.json)
    want_status = model_status if status is None else status
    want_body = model_body if body is None else body
    rows = compare(want_status, want_body, exchange)
    if rows:
        raise ConformanceFailure(requirement, case, rows, exchange, model.reason, ctx.strict)
    return exchange


def refused(total: int, *events: tuple[Any, Any]) -> dict[str, Any]:
    """The model's 200 reply for `total` events of which these (event, errorDescription) failed."""
    return x.batch_reply(total, [x.unprocessed_entry(event, text) for event, text in events])


# --- Section 3 -------------------------------------------------------------------------------


@check("CB-3.1")
def version_must_be_v2(ctx: Context) -> None:
    events = {"failed": [ctx.event()]}
    cases: list[tuple[str, dict[str, Any]]] = [("version missing", {"events": events})]
    for wrong in ["v1", "V2", "v2 ", "", 2, None, ["v2"]]:
        cases.append((f"version {wrong!r}", {"version": wrong, "events": events}))
    for case, payload in cases:
        verify(ctx, "CB-3.1", case, payload)


@check("CB-3.2")
def events_must_be_object_with_failed_list(ctx: Context) -> None:
    event = ctx.event()
    cases: list[tuple[str, Any]] = [
        ("events missing", {"version": "v2"}),
        ("events is a list", {"version": "v2", "events": [event]}),
        ("events is a string", {"version": "v2", "events": "failed"}),
        ("events is null", {"version": "v2", "events": None}),
        ("events is empty", {"version": "v2", "events": {}}),
        ("events.failed is an object", {"version": "v2", "events": {"failed": event}}),
        ("events.failed is a string", {"version": "v2", "events": {"failed": "x"}}),
        ("events.failed is null", {"version": "v2", "events": {"failed": None}}),
        ("events.failed is a number", {"version": "v2", "events": {"failed": 5}}),
    ]
    for case, payload in cases:
        verify(ctx, "CB-3.2", case, payload)


@check("CB-3.3")
def unknown_keys_are_ignored(ctx: Context) -> None:
    extra_event = {
        **ctx.event("soft_bounce"),
        "x-esp-message-id": "abc-123",
        "timestamp": 1730714617,
        "details": {"smtp": "452 4.2.2 mailbox full", "attempts": [1, 2]},
    }
    cases = [
        ("unknown top-level key", cs.batch([ctx.event()], esp="acme", batch_id=7)),
        (
            "unknown key in events",
            {"version": "v2", "events": {"failed": [ctx.event()], "deferred": [1, 2]}},
        ),
        ("unknown keys in an event", cs.batch([extra_event])),
        ("unknown keys everywhere", {**cs.batch([dict(extra_event)]), "signature": None}),
    ]
    for case, payload in cases:
        verify(ctx, "CB-3.3", case, payload)


@check("CB-3.4")
def every_type_is_processed(ctx: Context) -> None:
    events = [ctx.event(kind) for kind in x.FAILED_TYPES]
    verify(ctx, "CB-3.4", "one event of each type", cs.batch(events))
    for kind in x.FAILED_TYPES:
        verify(ctx, "CB-3.4", f"a lone {kind}", cs.batch([ctx.event(kind)]))


@check("CB-3.5")
def description_is_optional(ctx: Context) -> None:
    cases = [
        ("no description", [ctx.event("hard_bounce", description=None)]),
        ("empty description", [ctx.event("spam", description="")]),
        ("unicode description", [ctx.event("soft_bounce", description="Boîte pleine 📭 满")]),
        ("long description", [ctx.event("unsubscribed", description="x" * 5000)]),
    ]
    for case, events in cases:
        verify(ctx, "CB-3.5", case, cs.batch(events))


def _delivery(ctx: Context) -> dict[str, Any]:
    return ctx.event("delivered", description=None)


@check("CB-3.6")
def deliveries_are_counted(ctx: Context) -> None:
    cases = [
        ("failed and success together", cs.batch([ctx.event()], [_delivery(ctx), _delivery(ctx)])),
        ("empty failed, one delivery", cs.batch([], [_delivery(ctx)])),
    ]
    for case, payload in cases:
        verify(ctx, "CB-3.6", case, payload)
    failed, success = _many(ctx, 600), [_delivery(ctx) for _ in range(400)]
    verify(
        ctx,
        "CB-3.6",
        "600 failed and 400 success events",
        cs.batch(failed, success),
    )
    verify(
        ctx,
        "CB-3.6",
        "1000 failed and 1 success event",
        cs.batch(_many(ctx, 1000), [_delivery(ctx)]),
    )


def _many(ctx: Context, count: int, kind: str = "soft_bounce") -> list[dict[str, Any]]:
    message_id = ctx.fresh_message_id()
    return [ctx.event(kind, message_id=message_id, description=None) for _ in range(count)]


@check("CB-3.7")
def thousand_events_are_accepted(ctx: Context) -> None:
    verify(ctx, "CB-3.7", "1000 failed events", cs.batch(_many(ctx, 1000)))
    verify(ctx, "CB-3.7", "an empty batch", cs.batch([]))


@check("CB-3.8")
def oversized_batches_are_refused(ctx: Context) -> None:
    cases = [
        ("1001 failed events", cs.batch(_many(ctx, 1001))),
        ("1001 events, one of them malformed", cs.batch([*_many(ctx, 1000), {"type": "x"}])),
        ("1500 failed events", cs.batch(_many(ctx, 1500))),
    ]
    for case, payload in cases:
        verify(ctx, "CB-3.8", case, payload)


@check("CB-3.9")
def oversized_batches_store_nothing(ctx: Context) -> None:
    state = ctx.state()
    events = _many(ctx, 1001, "hard_bounce")
    message_id = int(events[0]["meta"].split("|")[6])
    exchange = verify(ctx, "CB-3.9", "1001 hard bounces", cs.batch(events))
    rows = [
        Difference(f"profile {events[i]['email']}", "no profile, or still subscribed", profile)
        for i in (0, 500, 1000)
        if (profile := state.profile(events[i]["email"])) and profile.get("subscribed") is not True
    ]
    raised = state.events(message_id=message_id)
    if raised:
        rows.append(Difference(f"system events for message {message_id}", [], raised[:3]))
    fail_if(ctx, "CB-3.9", "1001 hard bounces", rows, exchange)


# --- Section 4 -------------------------------------------------------------------------------

VENDOR_SAMPLE = {
    "version": "v2",
    "events": {
        "failed": [
            {
                "type": "unsubscribed",
                "email": "user1@example.com",
                "meta": "user1@example.com|"
                "1568798080|1730714617|20241104|0|wzrk_default|-17005907|",
                "description": "Hard bounce detected",
            },
            {
                "type": "hard_bounce",
                "email": "user3@example.com",
                "meta": "user3@example.com|"
                "1568798080|1730799638|20241105|0|wzrk_default|-17005910|",
                "description": "Hard bounce detected",
            },
            {
                "type": "soft_bounce",
                "email": "user5@example.com",
                "meta": "usert5@example.com|"
                "1568798080|1730714617|20241104|0|wzrk_default|-17005905|",
                "description": "Recipient Inbox Full",
            },
            {
                "type": "spam",
                "email": "user4@example.com",
                "meta": "user4@example.com|"
                "1568798080|1730714617|20241104|0|wzrk_default|-17005904|",
                "description": "Marked as spam",
            },
        ]
    },
}


@check("CB-4.1")
def full_success_reply(ctx: Context) -> None:
    verify(ctx, "CB-4.1", "the vendor's sample request", VENDOR_SAMPLE)
    events = [ctx.event(kind) for kind in ("hard_bounce", "soft_bounce", "spam", "unsubscribed")]
    verify(ctx, "CB-4.1", "four fresh events", cs.batch(events))


@check("CB-4.2")
def partial_failure_in_order(ctx: Context) -> None:
    no_meta = ctx.event("hard_bounce", description="User hard bounce")
    del no_meta["meta"]
    no_type = ctx.event("soft_bounce", description="User soft bounce")
    del no_type["type"]
    good = [ctx.event("spam"), ctx.event("unsubscribed")]
    payload = cs.batch([no_meta, good[0], no_type, good[1]])
    verify(
        ctx,
        "CB-4.2",
        "the vendor's partial sample: missing meta and missing type among good events",
        payload,
    )
    bad_type = {**ctx.event(), "type": "bounced", "x-extra": {"kept": True}}
    no_meta = {**ctx.event("spam"), "meta": None}
    events = [ctx.event(), bad_type, ctx.event("soft_bounce"), no_meta, ctx.event("bounce")]
    verify(
        ctx,
        "CB-4.2",
        "failures at positions 1 and 3 of 5, one carrying an unknown key",
        cs.batch(events),
    )
    everything_bad = [{**ctx.event(), "meta": None}, {**ctx.event(), "type": "nope"}]
    verify(ctx, "CB-4.2", "every event fails", cs.batch(everything_bad))


def _meta_cases(ctx: Context, requirement_id: str, cases: list[tuple[str, Any]]) -> None:
    """Each bad meta between two good events: the one event fails with `invalid meta`."""
    for case, value in cases:
        event = ctx.event("spam")
        if case == "meta missing":
            del event["meta"]
        else:
            event["meta"] = value
        before, after = ctx.event(), ctx.event("soft_bounce")
        verify(
            ctx,
            requirement_id,
            case,
            cs.batch([before, event, after]),
        )


@check("CB-4.3")
def invalid_meta(ctx: Context) -> None:
    _meta_cases(ctx, "CB-4.3", [("meta missing", None), ("meta null", None)])


@check("CB-4.18")
def empty_or_non_string_meta(ctx: Context) -> None:
    cases: list[tuple[str, Any]] = [
        ("meta empty", ""),
        ("meta a number", 17005907),
        ("meta an object", {"email": "a@example.com"}),
        ("meta a list", ["a@example.com"]),
        ("meta true", True),
    ]
    _meta_cases(ctx, "CB-4.18", cases)


def off_layout_metas(good: str) -> list[tuple[str, str]]:
    """Metas that break only the reading of section 2's layout (the page defines none)."""
    fields = good.split("|")
    return [
        ("meta free text", "garbage"),
        ("meta without the trailing pipe", good[:-1]),
        ("meta with seven fields", "|".join([*fields[:5], fields[6], ""])),
        ("meta with a non-numeric send time", "|".join([*fields[:2], "soon", *fields[3:]])),
        (
            "meta whose date is not the UTC date of its send time",
            good.replace("|20241104|", "|20241103|"),
        ),
        ("meta with a non-numeric message id", "|".join([*fields[:6], "abc", ""])),
    ]


@check("CB-4.19")
def off_layout_meta(ctx: Context) -> None:
    _meta_cases(ctx, "CB-4.19", list(off_layout_metas(ctx.event()["meta"])))


_BAD_TYPES: list[tuple[str, Any]] = [
    ("type missing", None),
    ("type empty", ""),
    ("type in upper case", "HARD_BOUNCE"),
    ("type unknown", "bounced"),
    ("type a number", 7),
    ("type null", None),
    ("type a list", ["hard_bounce"]),
]


@check("CB-4.4")
def unmapped_type(ctx: Context) -> None:
    for case, value in _BAD_TYPES:
        event = ctx.event()
        if case == "type missing":
            del event["type"]
        else:
            event["type"] = value
        verify(
            ctx,
            "CB-4.4",
            case,
            cs.batch([event, ctx.event()]),
        )


_MISSING_EMAILS: list[tuple[str, Any]] = [("email missing", None), ("email null", None)]
_MALFORMED_EMAILS: list[tuple[str, Any]] = [
    ("email empty", ""),
    ("email without @", "plainaddress"),
    ("email without domain", "user@"),
    ("email without local part", "@example.com"),
    ("email with a space", "two words@example.com"),
    ("email a number", 42),
]


def _email_cases(
    ctx: Context, requirement_id: str, cases: list[tuple[str, Any]], description: Any = None
) -> None:
    """Each bad email after a good event; `description` pins a wording the model leaves open."""
    for case, value in cases:
        event = ctx.event("unsubscribed")
        if case == "email missing":
            del event["email"]
        else:
            event["email"] = value
        verify(
            ctx,
            requirement_id,
            case,
            cs.batch([ctx.event(), event]),
            body=None if description is None else refused(2, (event, description)),
        )


@check("CB-4.5")
def missing_email_fails_that_event(ctx: Context) -> None:
    _email_cases(ctx, "CB-4.5", _MISSING_EMAILS)


@check("CB-4.17")
def malformed_email_fails_that_event(ctx: Context) -> None:
    _email_cases(ctx, "CB-4.17", _MALFORMED_EMAILS)


_UNREADABLE: list[tuple[str, bytes]] = [
    ("an empty body", b""),
    ("plain text", b"not json"),
    ("a truncated object", b'{"version": "v2", "events": {"failed": ['),
    ("a lone brace", b"{"),
    ("invalid UTF-8", b'{"version": "v2", "events": {"failed": []}, "x": "\xff\xfe"}'),
    ("trailing garbage", b'{"version": "v2", "events": {"failed": []}} trailing'),
    ("single-quoted keys", b"{'version': 'v2'}"),
]


@check("CB-4.6")
def unreadable_body(ctx: Context) -> None:
    for case, content in _UNREADABLE:
        verify(ctx, "CB-4.6", case, content)


_NON_OBJECTS: list[tuple[str, Any]] = [
    ("a JSON array", [{"version": "v2", "events": {"failed": []}}]),
    ("a JSON string", "v2"),
    ("a JSON number", 42),
    ("JSON null", None),
    ("JSON true", True),
]


@check("CB-4.7")
def non_object_top_level(ctx: Context) -> None:
    for case, payload in _NON_OBJECTS:
        verify(
            ctx,
            "CB-4.7",
            case,
            json.dumps(payload).encode(),
        )


def _deeply_nested(depth: int) -> bytes:
    return b'{"version": "v2", "events": {"failed": []}, "x": ' + b"[" * depth + b"]" * depth + b"}"


def _any_body() -> st.SearchStrategy[bytes]:
    """Everything a receiver may be sent: invalid bodies, near-valid batches, raw bytes."""
    return st.one_of(
        cs.invalid_bodies(),
        cs.mixed_batches().map(lambda pair: json.dumps(pair[0]).encode()),
        st.binary(max_size=64),
        st.sampled_from([_deeply_nested(100), _deeply_nested(100_000), b"\x00" * 16]),
    )


ODD_VALUES: tuple[Any, ...] = (
    [],
    ["x"],
    {},
    {"a": 1},
    None,
    True,
    0,
    -1.5,
    2**64,
    "",
    "x" * 10_000,
)


def _odd_inputs(ctx: Context) -> list[tuple[str, Any]]:
    """Every defined key set to every JSON type, at event and envelope level."""
    cases: list[tuple[str, Any]] = []
    for key in ("type", "email", "meta", "description"):
        for value in ODD_VALUES:
            cases.append(
                (
                    f"event {key} = {value!r:.30}",
                    cs.batch([ctx.event(), {**ctx.event(), key: value}]),
                )
            )
    for value in ODD_VALUES:
        cases.append((f"version = {value!r:.30}", {"version": value, "events": {"failed": []}}))
        cases.append((f"events = {value!r:.30}", {"version": "v2", "events": value}))
        cases.append((f"events.failed = {value!r:.30}", cs.batch(value)))
        events = {"failed": [], "success": value}
        cases.append((f"events.success = {value!r:.30}", {"version": x.VERSION, "events": events}))
        cases.append((f"an event = {value!r:.30}", cs.batch([value])))
    return cases


def server_error_rows(exchange: Exchange) -> list[Difference]:
    """CB-4.8 on one exchange: a 5xx is the only wrong answer."""
    if exchange.status >= 500:
        return [Difference("status", "<not 5xx>", exchange.status)]
    return []


@check("CB-4.8")
def never_5xx(ctx: Context) -> None:
    for case, payload in _odd_inputs(ctx):
        exchange = ctx.client.post(payload)
        ctx.on_example()
        fail_if(ctx, "CB-4.8", case, server_error_rows(exchange), exchange)

    @ctx.property_settings()
    @given(content=_any_body())
    def prop(content: bytes) -> None:
        exchange = ctx.client.post(content)
        ctx.on_example()
        fail_if(ctx, "CB-4.8", "generated input", server_error_rows(exchange), exchange)

    prop()


def counts_rows(exchange: Exchange) -> list[Difference]:
    """CB-4.9 on one exchange of a readable batch: a 200 whose counts add up to the events sent.

    Each field is reported once, as (field, expected, got): TOTAL_EVENTS against the events
    sent; when that is right, the sum of the other two counts against it.
    """
    if exchange.status != 200:
        return [Difference("status", 200, exchange.status)]
    body = exchange.json
    if not isinstance(body, dict):
        return [Difference("body", "a JSON object", body)]
    total = len(json.loads(exchange.request.content)["events"]["failed"])
    reported, processed = body.get(x.TOTAL_KEY), body.get(x.PROCESSED_KEY)
    entries = body.get(x.UNPROCESSED_KEY)
    if not same(total, reported):
        return [Difference(f"body.{x.TOTAL_KEY}", total, reported)]
    if not isinstance(processed, int) or not isinstance(entries, list):
        return [Difference("body", "integer counts and a list", body)]
    if processed + len(entries) != total:
        field = f"body.{x.PROCESSED_KEY} + len(body.{x.UNPROCESSED_KEY})"
        return [Difference(field, total, processed + len(entries))]
    return []


@check("CB-4.9")
def counts_invariant(ctx: Context) -> None:
    @ctx.property_settings()
    @given(pair=cs.mixed_batches(max_size=25))
    def prop(pair: tuple[dict[str, Any], list[cs.Mutated]]) -> None:
        payload, _ = pair
        exchange = ctx.client.post(payload)
        ctx.on_example()
        fail_if(ctx, "CB-4.9", "generated batch", counts_rows(exchange), exchange)

    prop()


@check("CB-4.10")
def unprocessed_are_exactly_the_mutated(ctx: Context) -> None:
    @ctx.property_settings()
    @given(pair=cs.mixed_batches(max_size=25))
    def prop(pair: tuple[dict[str, Any], list[cs.Mutated]]) -> None:
        payload, mutations = pair
        labels = ", ".join(f"{i}: {m.mutation}" for i, m in enumerate(mutations))
        exchange = verify(ctx, "CB-4.10", f"generated batch [{labels}]", payload)
        # A cross-check of the generator's labels against the model: a must-fail event is listed.
        must_fail = [m.event for m in mutations if m.must_fail]
        got = exchange.json.get(x.UNPROCESSED_KEY, []) if isinstance(exchange.json, dict) else []
        echoed = [
            {k: v for k, v in e.items() if k != x.ERROR_DESCRIPTION_KEY}
            for e in got
            if isinstance(e, dict)
        ]
        missing = [
            event for event in must_fail if not any(not difference(event, e) for e in echoed)
        ]
        rows = [
            Difference("UNPROCESSED_EVENTS", "to contain this mutated event", e) for e in missing
        ]
        fail_if(ctx, "CB-4.10", f"generated batch [{labels}]", rows, exchange)

    prop()


EDGE_NUMBERS: tuple[tuple[str, int | float], ...] = (
    ("a double that needs 17 digits", 0.1234567890123456789),
    ("0.1 + 0.2", 0.1 + 0.2),
    ("2^53 + 1", 2**53 + 1),
    ("beyond 64 bits", 2**64 + 1),
    ("the largest double", 1.7976931348623157e308),
    ("the smallest subnormal", 5e-324),
    ("negative zero", -0.0),
)
"""Numbers a stock parser keeps as doubles that are not their digits (or, for -0, that its printer
writes as 0): echoed as the same double, each is the same JSON value."""
BEYOND_DOUBLES = ("beyond the double range", 10**400)
"""Sent as 401 digits: a stock parser reads infinity, which no JSON printer may write."""


def _echoed_numbers(ctx: Context, cases: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any]]:
    """Each number under a key the protocol does not define, in an event refused for its meta."""
    out = []
    for case, number in cases:
        event = {**ctx.event(), "meta": None, "x_number": number, "x_nested": {"n": [number]}}
        out.append((f"echo of {case}", cs.batch([ctx.event(), event])))
    return out


@check("CB-4.11")
def documented_shape(ctx: Context) -> None:
    # An echo that is not JSON (`Infinity` for the infinity a parser read) fails; `null`, the same
    # digits or a 400 refusing the number as unreadable are all JSON of the documented shape.
    for case, payload in _echoed_numbers(ctx, (BEYOND_DOUBLES,)):
        verify(ctx, "CB-4.11", case, payload)

    @ctx.property_settings()
    @given(
        content=cs.invalid_bodies(deliveries=False)
        | st.builds(_deeply_nested, st.integers(1, 5000))
    )
    def prop(content: bytes) -> None:
        verify(ctx, "CB-4.11", "generated invalid body", content)

    prop()


@check("CB-4.20")
def numbers_come_back_as_the_same_double(ctx: Context) -> None:
    for case, payload in _echoed_numbers(ctx, EDGE_NUMBERS):
        verify(ctx, "CB-4.20", case, payload)


def _against_model(requirement_id: str) -> Callable[[Context, Exchange], list[Difference]]:
    def judge(ctx: Context, exchange: Exchange) -> list[Difference]:
        return model_rows(ctx, BY_ID[requirement_id], exchange)

    return judge


REPLAY_JUDGES: dict[str, Callable[[Context, Exchange], list[Difference]]] = {
    "CB-4.8": lambda _ctx, exchange: server_error_rows(exchange),
    "CB-4.9": lambda _ctx, exchange: counts_rows(exchange),
    "CB-4.10": _against_model("CB-4.10"),
    "CB-4.11": _against_model("CB-4.11"),
}
"""The property requirements a single saved request can be judged on again (`fuzz --replay`);
CB-5.5 and CB-5.6 depend on a sequence of callbacks and the receiver's state."""


# --- Readings and decisions on the points the page leaves open ----------------------------------


@check("CB-4.12")
def invalid_email_wording(ctx: Context) -> None:
    _email_cases(ctx, "CB-4.12", _MISSING_EMAILS + _MALFORMED_EMAILS, x.INVALID_EMAIL)


@check("CB-4.13")
def non_object_top_level_message(ctx: Context) -> None:
    for case, payload in _NON_OBJECTS:
        verify(
            ctx,
            "CB-4.13",
            case,
            json.dumps(payload).encode(),
            status=400,
            body=x.refusal(x.MISSING_PARAMETERS),
        )


@check("CB-4.14")
def non_object_event_entry(ctx: Context) -> None:
    strays: list[Any] = [42, "hard_bounce", None, ["a@example.com"], True]
    good = ctx.event()
    verify(
        ctx,
        "CB-4.14",
        "non-object entries in events.failed",
        cs.batch([good, *strays]),
        status=200,
        body=x.batch_reply(len(strays) + 1, [x.non_object_entry(stray) for stray in strays]),
    )


@check("CB-4.15")
def first_fault_reported(ctx: Context) -> None:
    cases = [
        ("bad type and bad meta", {"type": "nope", "meta": None}, x.UNMAPPED_TYPE),
        ("bad type and bad email", {"type": None, "email": None}, x.UNMAPPED_TYPE),
        ("bad meta and bad email", {"meta": None, "email": None}, x.INVALID_META),
        ("all three bad", {"type": 1, "meta": None, "email": None}, x.UNMAPPED_TYPE),
    ]
    for case, changes, description in cases:
        event = {**ctx.event(), **changes}
        verify(
            ctx,
            "CB-4.15",
            case,
            cs.batch([event]),
            body=refused(1, (event, description)),
        )


class _JsonContentType(Matcher):
    def matches(self, actual: Any) -> bool:
        return (
            isinstance(actual, str) and actual.split(";")[0].strip().lower() == "application/json"
        )

    def __repr__(self) -> str:
        return "application/json"


@check("CB-4.16")
def json_content_type(ctx: Context) -> None:
    for case, payload in [
        ("a good batch", cs.batch([ctx.event()])),
        ("a partial failure", cs.batch([{"type": "x"}])),
        ("an unreadable body", b"not json"),
        ("a missing key", {"version": "v2"}),
    ]:
        exchange = ctx.client.post(payload)
        content_type = exchange.headers.get("content-type")
        if not _JsonContentType().matches(content_type):
            rows = [Difference("headers.Content-Type", _JsonContentType(), content_type)]
            fail_if(ctx, "CB-4.16", case, rows, exchange)


# --- Section 5: effects, through the state read API -------------------------------------------


def _events_for(ctx: Context, meta: str) -> list[dict[str, Any]]:
    message_id = int(meta.split("|")[6])
    return [e for e in ctx.state().events(message_id=message_id) if e.get("meta") == meta]


def _effects(ctx: Context, requirement_id: str, kind: str, description: str = "why") -> None:
    """Send one `kind` event and compare the system events and the profile with section 5."""
    event = ctx.event(kind, description=description, meta_email=ctx.fresh_email("meta"))
    meta_email = event["meta"].split("|")[0]
    exchange = verify(ctx, requirement_id, f"one {kind}", cs.batch([event]))
    raised = _events_for(ctx, event["meta"])
    expected_names = []
    if kind in x.ERROR_NAMES:
        expected_names.append(x.NOTIFICATION_FAILED)
    if kind in x.UNSUBSCRIBING:
        expected_names.append(x.CHANNEL_UNSUBSCRIBED)
    rows = difference(sorted(expected_names), sorted(e.get("name") for e in raised), "events.name")
    fields = event["meta"].split("|")
    for raised_event in raised:
        properties = raised_event.get("properties") or {}
        name = raised_event.get("name")
        if name == x.NOTIFICATION_FAILED:
            rows += difference(x.ERROR_NAMES[kind], properties.get("Error"), f"{name}.Error")
            values = {str(v) for v in properties.values()}
            for label, value in (
                ("campaign id", fields[6]),
                ("label", fields[5]),
                ("variant", fields[4]),
            ):
                if value not in values:
                    rows.append(Difference(f"{name} {label}", value, properties))
        if name == x.CHANNEL_UNSUBSCRIBED:
            rows += difference(kind, properties.get("Type"), f"{name}.Type")
            if requirement_id == "CB-5.4":
                rows += difference(description, properties.get("reason"), f"{name}.reason")
    profile = ctx.state().profile(meta_email)
    subscribed = None if profile is None else profile.get("subscribed")
    if kind in x.UNSUBSCRIBING:
        rows += difference(False, subscribed, f"profile {meta_email} (from meta).subscribed")
    elif subscribed is not None:
        rows += difference(True, subscribed, f"profile {meta_email} (from meta).subscribed")
    fail_if(ctx, requirement_id, f"one {kind}, attributed by meta to {meta_email}", rows, exchange)


@check("CB-5.1")
def hard_bounce_effects(ctx: Context) -> None:
    _effects(ctx, "CB-5.1", "hard_bounce")


@check("CB-5.2")
def soft_bounce_effects(ctx: Context) -> None:
    _effects(ctx, "CB-5.2", "soft_bounce")


@check("CB-5.3")
def unsubscribing_effects(ctx: Context) -> None:
    for kind in ("spam", "unsubscribed", "bounce"):
        _effects(ctx, "CB-5.3", kind)


@check("CB-5.4")
def description_becomes_reason(ctx: Context) -> None:
    for kind in ("spam", "hard_bounce"):
        _effects(ctx, "CB-5.4", kind, description=f"reason {uuid.uuid4().hex[:6]} ✉")


@check("CB-5.5")
def duplicates_apply_once(ctx: Context) -> None:
    @ctx.property_settings()
    @given(event=cs.valid_events(), in_one_batch=st.booleans())
    def prop(event: dict[str, Any], in_one_batch: bool) -> None:
        # A fresh message id per run: a replayed example must not meet its own earlier events.
        fields = event["meta"].split("|")
        fields[6] = str(ctx.fresh_message_id())
        event = {**event, "meta": "|".join(fields)}
        first = ctx.client.post(cs.batch([event]))
        once = _events_for(ctx, event["meta"])
        payload = cs.batch([event, event]) if in_one_batch else cs.batch([event])
        second = ctx.client.post(payload)
        ctx.on_example()
        twice = _events_for(ctx, event["meta"])
        requirement = BY_ID["CB-5.5"]
        rows = model_rows(ctx, requirement, first) + model_rows(ctx, requirement, second)
        expected_count = (event["type"] in x.ERROR_NAMES) + (event["type"] in x.UNSUBSCRIBING)
        if len(twice) != len(once) or len(once) > expected_count:
            rows.append(
                Difference(
                    f"system events for meta {event['meta']!r}",
                    f"{expected_count} after the first delivery, unchanged by the retry",
                    f"{len(once)} after the first, {len(twice)} after the retry",
                )
            )
        fail_if(ctx, "CB-5.5", "the same event delivered twice", rows, second)

    prop()


@check("CB-5.6")
def stateful_subscription(ctx: Context) -> None:
    run_subscription_machine(ctx)


def all_checks() -> dict[str, CheckFunction]:
    return dict(CHECKS)


def missing_checks() -> list[str]:
    """Catalogue ids without a check: the suite's own self-test asserts this is empty."""
    return [rid for rid in BY_ID if rid not in CHECKS]
