"""An SMTP server that misbehaves before its 220 greeting, for the section 6 error tests.

PROTOCOL.md section 6: "SMTP connection error | ... connection closed before the greeting" and
"SMTP timeout | any stage stalls past the configured timeout, the greeting included". A real
aiosmtpd server always greets, so this one is raw asyncio: it accepts the TCP connection and then
either closes it at once (`CLOSE`) or says nothing until the test ends (`STALL`). It runs its own
event loop on a thread, listens on a free loopback port, and counts the connections it accepted
(a new attempt after a timeout would only wait again, so a stall must be met once per session).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CLOSE = "close"
STALL = "stall"
BEHAVIOURS = (CLOSE, STALL)


class PreGreetingServer:
    """Accepts connections and, before any greeting, closes them (`CLOSE`) or stalls (`STALL`)."""

    def __init__(self, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour {behaviour!r}: use one of {', '.join(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.accepted = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._held: list[asyncio.StreamWriter] = []
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))

    async def _client(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.behaviour == CLOSE:
            writer.close()
        else:
            self._held.append(writer)  # no greeting, ever: the client's timeout must fire

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()
        for writer in self._held:
            writer.close()

    @contextmanager
    def running(self) -> Iterator[PreGreetingServer]:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the pre-greeting server did not start within 10 s")
        try:
            yield self
        finally:
            assert self._stop is not None
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._loop.close()
