"""The OpenAPI description and the payload JSON Schema agree with the implementation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Request
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from werkzeug.datastructures import ImmutableMultiDict

from reference_impl.protocol.payload import PayloadRejected, read_batch
from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.openapi import openapi_document, payload_schema
from tests.reference_impl.strategies import envelope, mixed_events
from tests.samples import sample

PAYLOAD = Draft202012Validator(payload_schema())


def test_openapi_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    app = create_app(ReceiverConfig(tmp_path / "db.sqlite3"))
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        path = path.replace("{int(signed=True):message_id}", "{message_id}")
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {
        (path, method)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == described


READ: set[str] = set()
"""Names of the query parameters the app looked up while serving one request."""


class _RecordingArgs(ImmutableMultiDict):
    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:
        READ.add(key)
        return super().get(key, default, type)

    def __getitem__(self, key: Any) -> Any:
        READ.add(key)
        return super().__getitem__(key)

    def getlist(self, key: Any, type: Any = None) -> list[Any]:
        READ.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        READ.add(str(key))
        return super().__contains__(key)


class _RecordingRequest(Request):
    parameter_storage_class = _RecordingArgs


SAMPLE_PATH_VALUES = {
    "email": "pat@example.com",
    "message_id": "5",
    "label": "spring",
    "callback_id": "1",
    "filename": "dashboard.css",
}


def test_every_query_parameter_a_route_reads_is_documented(tmp_path: Path) -> None:
    """A query parameter the code reads but the OpenAPI does not list is one no client can
    discover: every GET route is served once and the names it looked up must be documented."""
    app = create_app(ReceiverConfig(tmp_path / "db.sqlite3"))
    app.request_class = _RecordingRequest
    client = app.test_client()
    checked = 0
    for template, item in openapi_document()["paths"].items():
        if "get" not in item:
            continue
        params = [*item.get("parameters", []), *item["get"].get("parameters", [])]
        documented = {p["name"] for p in params if p["in"] == "query"}
        path = re.sub(r"{([^}]+)}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], template)
        READ.clear()
        client.get(path)
        assert documented >= READ, f"GET {template} reads undocumented {READ - documented}"
        checked += 1
    assert checked >= 9


def test_served_document_is_the_built_one(receiver: Any) -> None:
    assert httpx.get(f"{receiver.url}/openapi.json").json() == json.loads(
        json.dumps(openapi_document())
    )


def test_payload_schema_is_valid_and_accepts_the_vendor_sample() -> None:
    Draft202012Validator.check_schema(payload_schema())
    assert PAYLOAD.is_valid(sample("callback-request.json"))


def fully_processed(body: bytes) -> bool:
    try:
        return not read_batch(body).unprocessed
    except PayloadRejected:
        return False


@given(st.lists(mixed_events(), max_size=20))
def test_schema_and_receiver_agree_on_which_batches_are_fully_valid(
    events: list[tuple[Any, bool]],
) -> None:
    body = envelope([event for event, _ in events])
    assert PAYLOAD.is_valid(json.loads(body)) == fully_processed(body)


@given(
    st.sampled_from(
        [
            b"[]",
            b'{"version": "v1", "events": {"failed": []}}',
            b'{"version": "v2", "events": {}}',
            b'{"version": "v2", "events": {"failed": {}}}',
            b'{"events": {"failed": []}}',
        ]
    )
)
def test_schema_refuses_every_envelope_the_receiver_refuses(body: bytes) -> None:
    assert not PAYLOAD.is_valid(json.loads(body))
    assert not fully_processed(body)


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ('"pat@home"@example.com', True),
        ("pat@home@example.com", False),
        ('"pat home"@example.com', False),
        ("josé@exämple.com", True),
    ],
)
def test_schema_and_receiver_agree_on_quoted_local_parts(email: str, valid: bool) -> None:
    """An `@` may stand in a quoted local part only; both sides must read that alike."""
    event = {
        "type": "spam",
        "email": email,
        "meta": sample("callback-request.json")["events"]["failed"][0]["meta"],
    }
    body = envelope([event])
    assert PAYLOAD.is_valid(json.loads(body)) is valid
    assert fully_processed(body) is valid
