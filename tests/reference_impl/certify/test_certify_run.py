"""The live run over real sockets: recorder up, probes sent, callbacks waited for, then graded.

Here a small vendor written in the test posts the callbacks over real HTTP, so the recorder, the
injected 500 and slow response, the waiting and the grading are exercised without the simulator;
the SMTP leg is tested against a bare aiosmtpd server that keeps the raw bytes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from rich.console import Console

from reference_impl.certify import checks as c
from reference_impl.certify.checks import grade
from reference_impl.certify.plan import Plan, load_plan, parse_plan
from reference_impl.certify.recording import SentProbe
from reference_impl.certify.run import ArrivalTracker, Hold, build_probes, live_run
from reference_impl.certify.smtp import OnSent, plan_provider, send_probes
from reference_impl.cli import main
from reference_impl.errors import EXIT_OPERATOR
from reference_impl.sender.provider import Provider
from tests.pregreeting import CLOSE, STALL, PreGreetingServer
from tests.reference_impl.certify import builders as b

PLANS = Path(__file__).resolve().parents[3] / "scenarios" / "certification"


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def _plan(port: int, **overrides: object) -> Plan:
    data = {
        "name": "in-test-vendor",
        "callback_url": f"http://127.0.0.1:{port}/callback",
        "deadline_seconds": 10,
        "settle_seconds": 0.3,
        "slow_response_seconds": 1.0,
        "probe": [
            {"id": "hard", "to": "bounce@v.test", "expect": "hard_bounce"},
            {"id": "spam", "to": "complaint@v.test", "expect": "spam"},
            {"id": "ok", "to": "success@v.test", "expect": "delivered"},
            {
                "id": "long",
                "to": "bounce+long@v.test",
                "expect": "hard_bounce",
                "meta_length": 1200,
            },
            {"id": "r500", "to": "bounce+r@v.test", "expect": "hard_bounce", "respond": "500"},
            {"id": "slow", "to": "bounce+s@v.test", "expect": "hard_bounce", "respond": "slow"},
        ],
        **overrides,
    }
    return parse_plan(data)


class ThreadVendor:
    """Posts one callback per probe after 'sending'; retries a 5xx or a timeout once if asked."""

    def __init__(self, url: str, *, retries: bool) -> None:
        self.url = url
        self.retries = retries
        self.threads: list[threading.Thread] = []

    def _post(self, probe: SentProbe) -> None:
        raw = b.body([b.event(probe)])
        headers = {"Content-Type": "application/json"}
        for _attempt in range(2 if self.retries else 1):
            try:
                with httpx.Client(timeout=0.4) as client:
                    if client.post(self.url, content=raw, headers=headers).status_code < 500:
                        return
            except httpx.TimeoutException:
                pass
            time.sleep(0.2)

    def __call__(self, probes: Sequence[SentProbe], on_sent: OnSent) -> dict[str, str | None]:
        for probe in probes:
            on_sent(probe, None)
            if probe.expect != "delivered":
                thread = threading.Thread(target=self._post, args=(probe,), daemon=True)
                thread.start()
                self.threads.append(thread)
        return {p.id: None for p in probes}


def test_live_run_with_a_conforming_vendor_certifies_and_stops_early(tmp_path: Path) -> None:
    port = free_port()
    plan = _plan(port)
    vendor = ThreadVendor(plan.callback_url, retries=True)
    started = time.monotonic()
    rec = live_run(
        plan, "127.0.0.1", port, tmp_path / "rec.jsonl", Console(file=None, quiet=True), send=vendor
    )
    elapsed = time.monotonic() - started
    result = grade(rec, deadline_at=rec.run.deadline_at)
    assert result.passed, [(x.id, x.grade, x.summary) for x in result.checks]
    assert result.check("retry-after-500").grade == c.PASS
    assert result.check("retry-after-timeout").grade == c.PASS
    assert elapsed < 8, "the run must end once everything arrived, not at the deadline"
    assert [p.id for p in rec.probes] == [p.id for p in plan.probes]


def test_live_run_with_a_vendor_that_never_retries_waits_for_the_deadline_then_reports_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    plan = _plan(port, deadline_seconds=3)
    rec = live_run(
        plan,
        "127.0.0.1",
        port,
        tmp_path / "rec.jsonl",
        Console(quiet=True),
        send=ThreadVendor(plan.callback_url, retries=False),
    )
    result = grade(rec, deadline_at=rec.run.deadline_at)
    assert result.check("retry-after-500").grade == c.NON_STRICT
    assert c.NO_RETRY in result.check("retry-after-500").summary


def test_arrival_tracker_counts_probes_and_retries_and_ignores_refused() -> None:
    probes = b.standard_probes()
    tracker = ArrivalTracker(probes)
    rec = b.well_behaved(probes)
    for callback in rec.callbacks[:3]:
        tracker.observe(callback)
    state = tracker.snapshot()
    assert (state.expected, state.arrived, state.missing) == (9, 9, 0)
    assert (state.retries_expected, state.retries_seen, state.complete) == (2, 0, False)
    for callback in rec.callbacks[3:]:
        tracker.observe(callback)
    assert tracker.snapshot().complete
    tracker.exclude(["hard"])
    assert tracker.snapshot().expected == 8


class RawSink:
    """aiosmtpd handler that keeps each message's raw bytes (as an ESP would see them)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.original_content)  # type: ignore[attr-defined]
        return "250 2.0.0 OK"

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if address.startswith("refuse@"):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, RawSink]]:
    sink = RawSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


def test_probes_are_sent_over_smtp_with_their_meta_and_a_refusal_does_not_stop_the_rest(
    smtp_sink: tuple[int, RawSink],
) -> None:
    """Metas up to the 998 line limit go unfolded; a longer one as RFC 2047 words, decodable."""
    port, sink = smtp_sink
    plan = parse_plan(
        {
            "name": "smtp",
            "callback_url": "http://127.0.0.1:9/cb",
            "probe": [
                {"id": "a", "to": "bounce+a@v.test", "expect": "hard_bounce", "meta_length": 900},
                {"id": "x", "to": "refuse@v.test", "expect": "hard_bounce"},
                {"id": "b", "to": "bounce+b@v.test", "expect": "hard_bounce", "meta_length": 1200},
            ],
        }
    )
    probes = build_probes(plan, time.time())
    seen: list[str] = []
    errors = send_probes(
        Provider(nickname="sink", host="127.0.0.1", port=port, from_address="cert@bounceback.test"),
        probes,
        lambda probe, error: seen.append(probe.id),
    )
    assert errors["a"] is None and errors["b"] is None
    assert errors["x"] == "SMTP invalid email ID at rcpt: 550 5.1.1 User unknown"
    assert seen == ["a", "x", "b"]
    first, second = sink.messages
    assert f"X-CleverTap_META: {probes[0].meta}\r\n".encode() in first
    assert all(len(line) <= 998 for line in second.split(b"\r\n"))
    assert b"X-CleverTap_META: =?" in second
    assert str(message_from_bytes(second, policy=default)["X-CleverTap_META"]) == probes[2].meta


def test_shipped_provider_file_loads_with_the_senders_loader() -> None:
    provider = plan_provider(load_plan(PLANS / "fake-esp.toml"))
    assert (provider.host, provider.port, provider.scheme) == ("127.0.0.1", 2525, "smtp")


def test_live_run_with_a_bad_provider_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "provider.toml").write_text(
        'nickname = "x"\nhost = "127.0.0.1"\nport = 0\nfrom_address = "a@b.test"\n',
        encoding="utf-8",
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "p"\nprovider = "provider.toml"\ncallback_url = "http://127.0.0.1:9/cb"\n'
        '[[probe]]\nid = "a"\nto = "bounce@x.test"\nexpect = "hard_bounce"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["certify", str(plan), "--listen", "127.0.0.1:0", "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == EXIT_OPERATOR
    assert "port" in result.output and "provider.toml" in result.output


def test_vendor_smtp_out_of_reach_is_an_operator_error_not_a_failed_vendor(
    tmp_path: Path,
) -> None:
    """Issue 10: an unreachable SMTP server read as NOT CERTIFIED (exit 1), the vendor's fault."""
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "provider.toml").write_text(
        f'nickname = "x"\nhost = "127.0.0.1"\nport = {port}\nfrom_address = "a@b.test"\n',
        encoding="utf-8",
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "p"\nprovider = "provider.toml"\ncallback_url = "http://127.0.0.1:9/cb"\n'
        '[[probe]]\nid = "a"\nto = "bounce@x.test"\nexpect = "hard_bounce"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["certify", str(plan), "--listen", "127.0.0.1:0", "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == EXIT_OPERATOR, result.output
    assert "NOT CERTIFIED" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(
        f"bounceback certify: error: could not reach the vendor's SMTP at 127.0.0.1:{port}: "
        "SMTP connection error at connect"
    )
    assert not (tmp_path / "r" / "report.json").exists()


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (CLOSE, "SMTP connection error at greeting: the server closed the connection before its"),
        (STALL, "SMTP timeout at greeting: no greeting within 0.3 s"),
    ],
)
def test_vendor_smtp_failing_before_its_greeting_names_the_section_6_error(
    tmp_path: Path, behaviour: str, error: str
) -> None:
    """PROTOCOL.md section 6: a vendor server that accepts TCP and then closes before its 220 is
    an SMTP connection error; one that never greets is an SMTP timeout after the provider's
    `timeout`. Either way nothing was sent: one line, exit 2, not a graded vendor."""
    with PreGreetingServer(behaviour).running() as server:
        (tmp_path / "provider.toml").write_text(
            f'nickname = "x"\nhost = "127.0.0.1"\nport = {server.port}\n'
            'from_address = "a@b.test"\ntimeout = 0.3\n',
            encoding="utf-8",
        )
        plan = tmp_path / "plan.toml"
        plan.write_text(
            'name = "p"\nprovider = "provider.toml"\ncallback_url = "http://127.0.0.1:9/cb"\n'
            '[[probe]]\nid = "a"\nto = "bounce@x.test"\nexpect = "hard_bounce"\n',
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            main,
            ["certify", str(plan), "--listen", "127.0.0.1:0", "--report", str(tmp_path / "r")],
        )
    assert result.exit_code == EXIT_OPERATOR, result.output
    last = result.output.strip().splitlines()[-1]
    where = f"could not reach the vendor's SMTP at 127.0.0.1:{server.port}: "
    assert last.startswith(f"bounceback certify: error: {where}{error}"), last
    assert server.accepted >= 1 and "Traceback" not in result.output


def test_hold_is_cut_short_and_waited_out_on_shutdown() -> None:
    """Shutdown must not close waitress while a slow answer is still inside the app."""
    hold = Hold()
    worker = threading.Thread(target=hold, args=(30.0,))
    worker.start()
    time.sleep(0.05)
    hold.release()
    worker.join(5)  # a bound against hanging, far below the 30 s hold; not a speed measure
    assert not worker.is_alive(), "release cut the 30 s hold short"
