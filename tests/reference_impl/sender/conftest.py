"""A bare aiosmtpd sink for the sender's wire tests: what left the sender, byte for byte."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Capture:
    """aiosmtpd handler hook that keeps the raw bytes of every message."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.raw.append(envelope.original_content or b"")
        return "250 2.0.0 OK"


@pytest.fixture
def capture() -> Iterator[tuple[Capture, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
