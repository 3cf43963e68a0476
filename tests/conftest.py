"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver, running_receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    """The reference receiver on a free loopback port, backed by a fresh SQLite file."""
    with running_receiver(tmp_path / "receiver.sqlite3") as running:
        yield running
