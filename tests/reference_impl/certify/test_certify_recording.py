"""The capture format round-trips byte-exact; the recorder records raw and injects faults."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reference_impl.certify.recording import (
    Callback,
    RecorderConfig,
    RecordingError,
    RecordingWriter,
    callback_record,
    create_recorder_app,
    parse_recording,
    probe_record,
    read_recording,
    run_record,
)
from reference_impl.protocol import replies as r
from reference_impl.receiver.server import BackgroundServer
from tests.reference_impl.certify import builders as b


def _lines(*records: dict) -> list[str]:
    return [json.dumps(record) for record in records]


def test_recording_round_trips_raw_bodies_byte_exact() -> None:
    rec = b.well_behaved()
    odd = b.call(99, 1.0, b"\xff\x00 not utf-8 \r\n", status=400)
    lines = _lines(
        run_record(rec.run),
        *(probe_record(p) for p in rec.probes),
        *(callback_record(c) for c in (*rec.callbacks, odd)),
    )
    back = parse_recording(lines)
    assert back.run == rec.run
    assert back.probes == rec.probes
    assert back.callbacks == (*rec.callbacks, odd)


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"kind": "probe", "id": "a"}, "line 1: field 'to'"),
        ({"kind": "nope"}, "unknown kind 'nope'"),
        (
            {"kind": "run", "format": 9, "plan_name": "x", "started_at": 1, "deadline_at": 2},
            "format 9",
        ),
    ],
)
def test_malformed_recording_names_line_and_field(record: dict, words: str) -> None:
    with pytest.raises(RecordingError, match=words):
        parse_recording(_lines(record), source="r.jsonl")


def test_bad_base64_and_non_json_lines_are_refused() -> None:
    good = callback_record(b.call(1, 1.0, b"{}"))
    with pytest.raises(RecordingError, match="body_b64"):
        parse_recording(_lines({**good, "body_b64": "!!!"}))
    with pytest.raises(RecordingError, match="line 2: not a JSON object"):
        parse_recording(["", "{oops"])


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[str, Path, list[Callback]]]:
    """The recording receiver on a free loopback port, 500 for one meta and slow for another."""
    path = tmp_path / "recording.jsonl"
    seen: list[Callback] = []
    with path.open("a", encoding="utf-8") as handle:
        probes = b.standard_probes()
        config = RecorderConfig(
            RecordingWriter(handle),
            injections={probes[8].meta: "500", probes[9].meta: "slow"},
            slow_seconds=0.4,
            on_callback=seen.append,
        )
        server = BackgroundServer(create_recorder_app(config), "127.0.0.1", 0, threads=4).start()
        try:
            yield server.url, path, seen
        finally:
            server.stop()


def test_recorder_answers_like_the_receiver_and_records_raw(
    recorder: tuple[str, Path, list[Callback]],
) -> None:
    url, path, seen = recorder
    probes = b.standard_probes()
    raw = b.body([b.event(probes[0]), b.event(probes[7])])
    with httpx.Client(timeout=5) as client:
        ok = client.post(
            f"{url}/callback", content=raw, headers={"Content-Type": "application/json"}
        )
        bad = client.post(f"{url}/callback", content=b"garbage")
        wrong_method = client.get(f"{url}/callback")
        too_many = client.post(f"{url}/callback", content=b.body([b.event(probes[0])] * 1001))
    assert ok.status_code == 200 and ok.json()[r.TOTAL_KEY] == 2
    assert bad.status_code == 400 and bad.json()[r.ERROR_KEY] == r.READ_ERROR
    assert too_many.status_code == 400 and too_many.json()[r.ERROR_KEY] == r.TOO_MANY_EVENTS
    rec = read_recording(path)
    assert [c.body for c in rec.callbacks] == [
        raw,
        b"garbage",
        b"",
        b.body([b.event(probes[0])] * 1001),
    ]
    assert wrong_method.status_code == 405
    assert [(c.method, c.status) for c in rec.callbacks] == [
        ("POST", 200),
        ("POST", 400),
        ("GET", 405),
        ("POST", 400),
    ]
    assert rec.callbacks[0].path == "/callback"
    assert rec.callbacks[0].header("content-type") == "application/json"
    assert len(seen) == 4


def test_recorder_answers_the_chosen_callback_500_once_then_normally(
    recorder: tuple[str, Path, list[Callback]],
) -> None:
    url, path, _ = recorder
    target = b.standard_probes()[8]
    raw = b.body([b.event(target)])
    with httpx.Client(timeout=5) as client:
        first = client.post(url + "/cb", content=raw)
        retry = client.post(url + "/cb", content=raw)
    assert first.status_code == 500 and first.json()[r.ERROR_KEY] == r.SERVER_ERROR
    assert retry.status_code == 200
    assert [c.injected for c in read_recording(path).callbacks] == ["500", None]


def test_recorder_holds_the_slow_probe_past_a_client_timeout(
    recorder: tuple[str, Path, list[Callback]],
) -> None:
    url, path, _ = recorder
    raw = b.body([b.event(b.standard_probes()[9])])
    with httpx.Client(timeout=0.15) as client, pytest.raises(httpx.ReadTimeout):
        client.post(url + "/cb", content=raw)
    started = time.monotonic()
    with httpx.Client(timeout=5) as client:
        retry = client.post(url + "/cb", content=raw)
    assert retry.status_code == 200 and time.monotonic() - started < 0.3
    assert [c.injected for c in read_recording(path).callbacks] == ["slow", None]


def test_writer_flushes_each_record_at_once() -> None:
    handle = io.StringIO()
    RecordingWriter(handle).write({"kind": "x"})
    assert handle.getvalue() == '{"kind":"x"}\n'
