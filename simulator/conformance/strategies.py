"""Public Hypothesis strategies for v2 callbacks: valid, near-valid and invalid.

Use them in your own property tests::

    from hypothesis import given
    from simulator.conformance import strategies as cb

    @given(cb.valid_batches(max_size=20))
    def test_my_receiver_accepts(batch): ...

Valid values are built from PROTOCOL.md sections 2-3 directly (no import of the reference meta
codec), and stay inside what the protocol decides: addresses are plain `local@domain.tld`, metas
follow the section 2 layout. Near-valid events carry exactly one mutation each; `mutated_events()`
says which, so a property can tell which events a receiver must refuse.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from simulator.protocol.expect import FAILED_TYPES, MAX_EVENTS, VERSION

# What users import (docs/conformance.md): the strategies (`json_values` and `EDGE_NUMBERS` for
# any JSON value and numbers a stock parser cannot keep), the `Mutated` they report, the two
# alphabets they draw text from, and two builders for values a test fixes (`build_meta` for a
# known address, `batch` to wrap drawn events in a body).
__all__ = [
    "ANY_TEXT",
    "EDGE_NUMBERS",
    "FREE_TEXT",
    "Mutated",
    "batch",
    "build_meta",
    "delivery_events",
    "emails",
    "invalid_bodies",
    "json_values",
    "meta_values",
    "metas",
    "mixed_batches",
    "mutated_events",
    "near_valid_events",
    "opaque_metas",
    "oversized_batches",
    "valid_batches",
    "valid_events",
]

_DEFINED_KEYS = ("type", "email", "meta", "description")
_LATEST_SEND_TIME = 4_102_444_799  # 2099-12-31T23:59:59Z: keeps every date eight digits.

ANY_TEXT = st.characters(exclude_categories=("Cs",))
"""Every character UTF-8 can encode. Hypothesis's default alphabet, `characters(codec="utf-8")`,
is the same set, but the first draw from it in a folder without a `.hypothesis/` cache builds a
codec table for about two seconds, which trips the `too_slow` health check of a user's first run."""
FREE_TEXT = st.characters(exclude_categories=("Cs", "Cc"))
"""Description text: no control characters, whose status as "free text" PROTOCOL.md leaves open."""
_LOCAL = string.ascii_lowercase + string.digits
_LABEL = string.ascii_letters + string.digits + "_-."
_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
_NON_STRING_JSON = (
    _JSON_SCALARS
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(ANY_TEXT, max_size=5), st.integers(), max_size=2)
)
_DOUBLE_EDGES = [2**53 + 1, -(2**53) - 1, 2**64 + 1, -(2**63) - 1, 0.1234567890123456789, 5e-324]
EDGE_NUMBERS = st.sampled_from([*_DOUBLE_EDGES[:4], 10**400, *_DOUBLE_EDGES[4:]])
"""Numbers a stock parser cannot keep: beyond 2^53, beyond 64 bits, beyond the double range
(sent as 401 digits), or needing 17 significant digits."""


def _json_values(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _JSON_SCALARS | numbers | st.text(ANY_TEXT, max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(ANY_TEXT, max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


json_values = _json_values(EDGE_NUMBERS)
_doubles_values = _json_values(st.sampled_from(_DOUBLE_EDGES))
"""JSON values whose every number is a double: a number beyond the double range may make a
receiver refuse the whole body as unreadable (PROTOCOL.md section 4, docs/conformance.md 13), so
events every receiver must process never hold one; CB-4.11 and `invalid_bodies` send it."""


@st.composite
def emails(draw: st.DrawFn) -> str:
    """Plain addresses every receiver must accept: `local[.part]@label.tld`."""
    local = draw(st.lists(st.text(_LOCAL, min_size=1, max_size=12), min_size=1, max_size=3))
    tag = draw(st.sampled_from(["", "+news", "+a1"]))
    domain = draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12))
    tld = draw(st.sampled_from(["com", "org", "net", "example", "io"]))
    return f"{'.'.join(local)}{tag}@{domain}.{tld}"


def build_meta(
    email: str,
    account_id: int,
    sent_at: int,
    variant: int = 0,
    label: str = "wzrk_default",
    message_id: int = 0,
) -> str:
    """A meta value in PROTOCOL.md section 2's layout (date = UTC date of `sent_at`)."""
    date = datetime.fromtimestamp(sent_at, UTC).strftime("%Y%m%d")
    return f"{email}|{account_id}|{sent_at}|{date}|{variant}|{label}|{message_id}|"


@st.composite
def metas(draw: st.DrawFn, email: str | st.SearchStrategy[str] | None = None) -> str:
    """Structured metas, valid per section 2; `email` fixes or draws field 1."""
    if email is None:
        address = draw(emails())
    elif isinstance(email, str):
        address = email
    else:
        address = draw(email)
    return build_meta(
        address,
        draw(st.integers(0, 10**12)),
        draw(st.integers(0, _LATEST_SEND_TIME)),
        draw(st.integers(0, 99)),
        draw(st.just("wzrk_default") | st.text(_LABEL, min_size=1, max_size=30)),
        draw(st.integers(-(2**63), 2**63 - 1)),
    )


def opaque_metas(max_size: int | None = None) -> st.SearchStrategy[str]:
    """Any string at all, of any length: what an ESP must echo byte-exact without parsing."""
    return st.text(ANY_TEXT, max_size=max_size) | st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=70, max_size=2000
    )


def meta_values() -> st.SearchStrategy[str]:
    """Structured and opaque metas together, for ESP round-trip properties."""
    return metas() | opaque_metas()


@st.composite
def valid_events(
    draw: st.DrawFn,
    types: tuple[str, ...] = FAILED_TYPES,
    with_description: bool | None = None,
    extra_keys: bool = True,
) -> dict[str, Any]:
    """One `events.failed` entry every receiver must process (section 3).

    With `extra_keys`, some events carry keys the spec does not define (section 3: ignored, never
    an error), so a receiver that drops them from an echoed failure is caught too.
    """
    email = draw(emails())
    # Section 2: attribution is by meta, which may name another address than `email`.
    meta_email = draw(st.just(email) | emails())
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(types)),
        "email": email,
        "meta": draw(metas(meta_email)),
    }
    if with_description if with_description is not None else draw(st.booleans()):
        event["description"] = draw(st.text(FREE_TEXT, max_size=40))
    if extra_keys and draw(st.integers(0, 3)) == 0:
        event.update(draw(_extra_keys))
    return event


_extra_keys = st.dictionaries(
    st.text(ANY_TEXT, max_size=12).filter(lambda k: k not in _DEFINED_KEYS),
    _doubles_values,
    min_size=1,
    max_size=3,
)


@st.composite
def delivery_events(draw: st.DrawFn) -> dict[str, Any]:
    """One `events.success` entry: `{"type": "delivered", ...}`."""
    email = draw(emails())
    return {"type": "delivered", "email": email, "meta": draw(metas(email))}


def batch(failed: list[Any], success: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The v2 envelope around lists of events."""
    events: dict[str, Any] = {"failed": failed}
    if success is not None:
        events["success"] = success
    return {"version": VERSION, "events": events, **extra}


@st.composite
def valid_batches(
    draw: st.DrawFn, min_size: int = 0, max_size: int = MAX_EVENTS, deliveries: bool = True
) -> dict[str, Any]:
    """A whole v2 body of `min_size..max_size` events in all, every one processable."""
    failed = draw(st.lists(valid_events(), min_size=min_size, max_size=max_size))
    if deliveries and draw(st.booleans()):
        room = max_size - len(failed)
        success = draw(st.lists(delivery_events(), max_size=min(room, 10)))
        return batch(failed, success)
    return batch(failed)


@dataclass(frozen=True, slots=True)
class Mutated:
    """A near-valid event: which mutation was applied and whether it must make the event fail.

    `must_fail` is what the page requires (a missing type, meta or email; an unknown type). A
    meta off the section 2 layout or a malformed address fails only under the project's reading,
    so such events are labelled `must_fail=False`: a receiver may process or refuse them.
    """

    event: Any
    mutation: str
    must_fail: bool


_BAD_EMAILS = st.sampled_from(
    ["", "plainaddress", "@example.com", "user@", "two words@example.com", "a@b@", " ", "user"]
)


@st.composite
def _bad_metas(draw: st.DrawFn, good: str) -> str:
    fields = good.split("|")
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return ""
    if choice == 1:
        return good[:-1]  # no trailing pipe
    if choice == 2:
        return "|".join([*fields[:-2], ""])  # seven fields
    if choice == 3:
        fields[2] = draw(st.sampled_from(["", "abc", "-5", "1.5", "١٢٣"]))
        return "|".join(fields)
    if choice == 4:
        fields[3] = "19700102" if fields[3] != "19700102" else "19700103"  # date != UTC(send)
        return "|".join(fields)
    if choice == 5:
        fields[6] = draw(st.sampled_from(["", "x", "1e3", "--1"]))
        return "|".join(fields)
    return draw(st.text(string.ascii_letters + string.digits + " ", max_size=40))


@st.composite
def mutated_events(draw: st.DrawFn, huge: bool = True) -> Mutated:
    """A valid event with exactly one mutation (missing key, wrong type, unknown type, bad meta,
    bad email, extra keys, unicode, huge strings), labelled with whether it must be refused."""
    event = draw(valid_events())
    kinds = [
        "missing key",
        "wrong type",
        "unknown type",
        "bad meta",
        "bad email",
        "extra keys",
        "unicode",
    ]
    if huge:
        kinds.append("huge string")
    kind = draw(st.sampled_from(kinds))
    if kind == "missing key":
        key = draw(st.sampled_from(_DEFINED_KEYS))
        event.pop(key, None)
        return Mutated(event, f"missing {key}", key != "description")
    if kind == "wrong type":
        key = draw(st.sampled_from(("type", "email", "meta")))
        event[key] = draw(_NON_STRING_JSON)
        return Mutated(event, f"{key} is not a string", key == "type" or event[key] is None)
    if kind == "unknown type":
        event["type"] = draw(
            st.sampled_from(["HARD_BOUNCE", "hardbounce", "delivered", "", "complaint"])
            | st.text(ANY_TEXT, max_size=12).filter(lambda t: t not in FAILED_TYPES)
        )
        return Mutated(event, "unknown type", True)
    if kind == "bad meta":
        event["meta"] = draw(_bad_metas(event["meta"]))
        return Mutated(event, "bad meta", False)
    if kind == "bad email":
        event["email"] = draw(_BAD_EMAILS)
        return Mutated(event, "bad email", False)
    if kind == "extra keys":
        event.update(draw(_extra_keys))
        return Mutated(event, "extra keys", False)
    if kind == "unicode":
        event["description"] = draw(
            st.text(st.characters(min_codepoint=0x80, exclude_categories=("Cs", "Cc")), min_size=1)
        )
        return Mutated(event, "unicode description", False)
    size = draw(st.sampled_from([10_000, 100_000]))
    key = draw(st.sampled_from(("description", "type", "meta")))
    event[key] = draw(st.sampled_from("xé😀")) * size
    return Mutated(event, f"huge {key}", key == "type")


def near_valid_events(huge: bool = True) -> st.SearchStrategy[Any]:
    """Just the event of `mutated_events()`."""
    return mutated_events(huge=huge).map(lambda m: m.event)


@st.composite
def mixed_batches(draw: st.DrawFn, max_size: int = 20) -> tuple[dict[str, Any], list[Mutated]]:
    """A batch mixing valid and near-valid events, with the mutation record in request order."""
    entries = draw(
        st.lists(
            st.one_of(
                valid_events().map(lambda e: Mutated(e, "none", False)),
                mutated_events(huge=False),
            ),
            max_size=max_size,
        )
    )
    return batch([m.event for m in entries]), entries


@st.composite
def invalid_bodies(draw: st.DrawFn, deliveries: bool = True) -> bytes:
    """Whole bodies a receiver must refuse with 400: unreadable, wrong top level, 1001+ events.

    Without `deliveries`, oversized batches hold `failed` events only (the `success` group is a
    reading of a later page revision, so a MUST check leaves it out).
    """
    kind = draw(st.integers(0, 5))
    if kind == 0:
        text = draw(st.text(ANY_TEXT, max_size=60).filter(lambda t: not _is_json(t)))
        return text.encode("utf-8")
    if kind == 1:
        return draw(
            st.binary(min_size=1, max_size=40).filter(lambda b: not _is_utf8(b) and not _is_json(b))
        )
    if kind == 2:
        top = draw(
            st.lists(json_values, max_size=3) | _JSON_SCALARS | st.text(ANY_TEXT, max_size=10)
        )
        return json.dumps(top).encode()
    if kind == 3:
        body = draw(st.dictionaries(st.text(ANY_TEXT, max_size=8), json_values, max_size=3))
        body.pop("version", None)
        if draw(st.booleans()):
            body["events"] = {"failed": []}
        else:
            body["version"] = draw(st.sampled_from(["v1", "V2", "2", "", "v2 "]) | _NON_STRING_JSON)
        return json.dumps(body).encode()
    if kind == 4:
        events = draw(
            _NON_STRING_JSON.filter(lambda v: not isinstance(v, dict))
            | st.fixed_dictionaries(
                {"failed": _NON_STRING_JSON.filter(lambda v: not isinstance(v, list))}
            )
            | st.just({})
        )
        return json.dumps({"version": VERSION, "events": events}).encode()
    return json.dumps(draw(oversized_batches(deliveries=deliveries))).encode()


@st.composite
def oversized_batches(
    draw: st.DrawFn, max_extra: int = 50, deliveries: bool = True
) -> dict[str, Any]:
    """1001 or more events, split across `failed` and `success` in some draws (`deliveries`)."""
    total = MAX_EVENTS + draw(st.integers(1, max_extra))
    event = draw(valid_events(with_description=False, extra_keys=False))
    delivered = {"type": "delivered", "email": event["email"], "meta": event["meta"]}
    split = draw(st.sampled_from([total, total // 2, total - 1])) if deliveries else total
    success = [delivered] * (total - split)
    return batch([event] * split, success or None)


def _is_json(text: str | bytes) -> bool:
    """Readable by Python's json, which also detects a BOM, UTF-16 and UTF-32 in bytes."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
