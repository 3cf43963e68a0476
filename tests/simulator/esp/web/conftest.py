"""The fake ESP behind the web tests: `ses-simulator` over plain SMTP, its API on a free port,
posting every callback at once to the reference receiver (`receiver`, from tests/conftest.py).
A module that needs other delivery settings defines its own `esp`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.esp.server import FakeESP


@pytest.fixture
def esp(receiver: RunningReceiver) -> Iterator[FakeESP]:
    with FakeESP(
        "ses-simulator", receiver.callback_url, tls="none", api_port=0, batch_delay=0.0
    ) as running:
        yield running
