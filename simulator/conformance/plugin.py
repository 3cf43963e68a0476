"""The `bounceback` pytest plugin: options, fixtures and reporting for the conformance suite.

Registered through the `pytest11` entry point, so installing bounceback is enough. Without any
option the suite runs against the reference receiver, started in this process on a free port.

Options::

    --receiver-url URL          callback URL of the receiver under test
    --receiver-state-url URL    base URL of its state read API (enables the section 5 checks)
    --receiver-state-token TOK  bearer token for that read API (or $BOUNCEBACK_STATE_TOKEN)
    --receiver-app MOD:ATTR     a WSGI app (or factory) to test in process, through no socket
    --bounceback-profile NAME   Hypothesis settings profile: dev, ci or fuzz
    --expected-failures ID|FILE known failures, run as strict xfails
    --must-only                 deselect SHOULD-level requirements
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

from simulator.conformance.client import CallbackClient
from simulator.conformance.context import ConformanceFailure, Context
from simulator.conformance.requirements import BY_ID, Level, Requirement, UnknownRequirement
from simulator.conformance.transport import Target, load_app, url_target, wsgi_target

PROFILES: dict[str, dict[str, Any]] = {
    "dev": {"max_examples": 50, "deadline": None},
    "ci": {
        "max_examples": 40,
        "derandomize": True,
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    },
    "fuzz": {"max_examples": 5000, "deadline": None},
}
"""The same profiles as the repository's top-level conftest, for use outside this repository."""

STATE_TOKEN_ENV = "BOUNCEBACK_STATE_TOKEN"
RESULTS_KEY = pytest.StashKey["ResultTally"]()
MARKER = "bounceback_conformance"


def register_profiles() -> None:
    """Register dev/ci/fuzz unless someone (the repository's conftest, say) already has."""
    for name, values in PROFILES.items():
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(name, **values)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bounceback", "bounceback conformance suite")
    group.addoption(
        "--receiver-url",
        metavar="URL",
        help="callback URL of the receiver to test (default: the reference receiver, started "
        "in this process on a free port)",
    )
    group.addoption(
        "--receiver-state-url",
        metavar="URL",
        help="base URL of the receiver's state read API (/api/profiles/<email>, /api/events); "
        "without it the section 5 checks are skipped for a --receiver-url",
    )
    group.addoption(
        "--receiver-state-token",
        metavar="TOKEN",
        help="bearer token for the state read API, for a receiver that guards it; default: "
        "$BOUNCEBACK_STATE_TOKEN",
    )
    group.addoption(
        "--receiver-app",
        metavar="MODULE:ATTR",
        help="a WSGI app, or a factory returning one, to test in process (no sockets)",
    )
    group.addoption(
        "--bounceback-profile",
        choices=sorted(PROFILES),
        help="Hypothesis settings profile for the property checks: dev (fast), ci "
        "(derandomized, bounded) or fuzz (long)",
    )
    group.addoption(
        "--expected-failures",
        metavar="ID_OR_FILE",
        nargs="+",
        action="extend",
        default=[],
        help="requirement ids (CB-4.2) or files of ids, one a line, expected to fail: run as "
        "strict xfails, so the run fails once they pass",
    )
    group.addoption(
        "--must-only",
        action="store_true",
        help="run only MUST-level requirements",
    )


def expected_failure_ids(values: list[str]) -> set[str]:
    """Ids from the command line; a value naming an existing file contributes its lines."""
    ids: set[str] = set()
    for value in values:
        path = Path(value)
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                text = line.split("#", 1)[0].strip()
                if text:
                    ids.add(text.split()[0])
        else:
            ids.add(value)
    for requirement_id in ids:
        if requirement_id not in BY_ID:
            raise pytest.UsageError(str(UnknownRequirement(requirement_id)))
    return ids


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: a bounceback conformance requirement (the shipped suite)"
    )
    config.addinivalue_line("markers", "scenario(name): the scenario the fake_esp fixture runs")
    register_profiles()
    profile = config.getoption("bounceback_profile")
    if profile:
        settings.load_profile(profile)
    tally = ResultTally()
    config.stash[RESULTS_KEY] = tally
    config.pluginmanager.register(tally, "bounceback-tally")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag each requirement test, turn known failures into strict xfails, apply --must-only."""
    expected = expected_failure_ids(config.getoption("expected_failures"))
    must_only = config.getoption("must_only")
    kept, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        requirement = callspec.params.get("requirement") if callspec else None
        if item.get_closest_marker(MARKER) is None or not isinstance(requirement, Requirement):
            kept.append(item)
            continue
        item.user_properties += [
            ("requirement", requirement.id),
            ("level", requirement.level.value),
            ("quote", requirement.quote),
        ]
        if must_only and requirement.level is not Level.MUST:
            deselected.append(item)
            continue
        if requirement.id in expected:
            item.add_marker(
                pytest.mark.xfail(
                    strict=True,
                    raises=ConformanceFailure,
                    reason=f"{requirement.id} listed in --expected-failures",
                )
            )
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Show a conformance failure as its report (requirement, sent, got, differences, curl)."""
    from simulator.conformance.fuzz import conformance_failures

    report = yield
    failures = conformance_failures(call.excinfo.value) if call.excinfo is not None else []
    if failures and report.failed:
        lines: list[str] = []
        for failure in failures:
            lines.append(failure.report())
            if failure.request is not None:
                lines += ["reproduce with:", "  " + failure.request.as_curl()[:4000]]
            lines += [n for n in getattr(failure, "__notes__", []) if n.strip()]
            lines.append("")
        report.longrepr = "\n".join(lines).rstrip()
    return report


class ResultTally:
    """Counts outcomes per requirement level, for the summary and `bounceback conform`."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.failed_ids: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        level = properties.get("level")
        if level is None:
            return
        if report.when == "call" or (report.skipped and report.when == "setup"):
            outcome = (
                "xfailed" if report.skipped and hasattr(report, "wasxfail") else report.outcome
            )
            if report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
                outcome = "xpassed (strict: remove it from --expected-failures)"
            self.counts[(level, outcome)] += 1
            if report.failed:
                self.failed_ids.append((level, properties["requirement"]))
        elif report.failed:
            self.counts[(level, "error")] += 1
            self.failed_ids.append((level, properties["requirement"]))

    @property
    def must_failed(self) -> bool:
        return any(level == Level.MUST.value for level, _ in self.failed_ids)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    tally = config.stash.get(RESULTS_KEY, None)
    if tally is None or not tally.counts:
        return
    terminalreporter.section("bounceback conformance")
    for level in Level:
        counts = {o: n for (lvl, o), n in sorted(tally.counts.items()) if lvl == level.value}
        if counts:
            shown = ", ".join(f"{n} {o}" for o, n in counts.items())
            terminalreporter.write_line(f"{level.value}: {shown}")
    for level, requirement_id in tally.failed_ids:
        terminalreporter.write_line(f"  failed {level}: {BY_ID[requirement_id].label}")
    if tally.must_failed:
        terminalreporter.write_line("verdict: NOT CONFORMANT (a MUST requirement failed)")
    else:
        terminalreporter.write_line("verdict: conformant to every MUST requirement that ran")


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def callback_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running reference receiver: `.url`, `.callback_url`, `.store`, on a free loopback port."""
    from reference_impl.receiver.server import running_receiver

    db_path = tmp_path_factory.mktemp("bounceback-receiver") / "receiver.sqlite3"
    with running_receiver(db_path) as receiver:
        yield receiver


@pytest.fixture(scope="session")
def bounceback_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Where the suite sends callbacks: --receiver-url, --receiver-app or the reference."""
    config = request.config
    url = config.getoption("receiver_url")
    app_spec = config.getoption("receiver_app")
    state_url = config.getoption("receiver_state_url")
    state_token = config.getoption("receiver_state_token") or os.environ.get(STATE_TOKEN_ENV)
    if url and app_spec:
        raise pytest.UsageError("give --receiver-url or --receiver-app, not both")
    if url:
        yield url_target(url, state_url, state_token)
        return
    if app_spec:
        yield wsgi_target(load_app(app_spec), description=f"in-process app {app_spec}")
        return
    receiver = request.getfixturevalue("callback_receiver")
    yield url_target(receiver.callback_url, state_url or receiver.url, state_token)


@pytest.fixture(scope="session")
def callback_client(bounceback_target: Target) -> Iterator[CallbackClient]:
    """Posts payloads to the receiver under test and returns parsed `Exchange`s."""
    _warm_strategies()
    with CallbackClient(bounceback_target) as client:
        yield client


def _warm_strategies() -> None:
    """Build the strategies' Unicode tables now, outside any test's clock.

    A test drawing from `strategies` in a folder with no `.hypothesis/` cache would otherwise pay
    for them inside its first draws and, on a loaded machine, trip Hypothesis's `too_slow` health
    check on its first run only.
    """
    from simulator.conformance import strategies

    for alphabet in (strategies.ANY_TEXT, strategies.FREE_TEXT):
        alphabet.validate()


@pytest.fixture(scope="session")
def conformance_context(callback_client: CallbackClient) -> Context:
    return Context(callback_client, settings())


@pytest.fixture
def receiver_reset(callback_client: CallbackClient) -> Callable[[], None]:
    """Empties the receiver under test before the test (`DELETE <state URL>/api/state`, with the
    state token), and hands the test the same call to empty it again midway.

    Skipped, with the reason, when there is no state URL (a --receiver-url without
    --receiver-state-url, or an in-process app with no read API). The plugin only speaks HTTP
    to the receiver, so any receiver offering that route can be reset, the reference one too.
    """
    state = callback_client.state
    if state is None:
        pytest.skip("receiver_reset needs the receiver's state URL (--receiver-state-url)")
    state.reset()
    return state.reset


@pytest.fixture
def fake_esp(request: pytest.FixtureRequest, callback_receiver: Any) -> Iterator[Any]:
    """A running fake ESP posting to `callback_receiver`.

    The scenario comes from `@pytest.mark.scenario("name", **FakeESP options)`, default `smoke`.
    """
    from simulator.conformance.esp_fixtures import started_fake_esp

    marker = request.node.get_closest_marker("scenario")
    scenario = marker.args[0] if marker and marker.args else None
    options = dict(marker.kwargs) if marker else {}
    with started_fake_esp(callback_receiver.callback_url, scenario, **options) as esp:
        yield esp


@pytest.fixture
def fake_esp_control(fake_esp: Any) -> Any:
    """`fake_esp`'s runtime controls and reset over its API: `.fault("rcpt", 1.0)`, `.pause()`,
    `.resume()`, `.receiver_down()`, `.outcomes(...)`, `.restore()`, `.reset()`."""
    from simulator.conformance.esp_fixtures import control_for

    return control_for(fake_esp)


@pytest.fixture
def smtp_sender(fake_esp: Any) -> Any:
    """Sends mail to `fake_esp`, each message stamped with a fresh `X-CleverTap_META`."""
    from simulator.conformance.esp_fixtures import sender_for

    return sender_for(fake_esp)
