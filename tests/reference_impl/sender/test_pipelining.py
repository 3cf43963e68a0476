"""SMTP pipelining (RFC 2920) over real sockets: the sender groups MAIL, RCPT and DATA where the
server offers it, and each recipient is reported exactly as without it (issue 13).

`GroupingServer` answers nothing until it holds MAIL, RCPT and DATA together, so a client that
waits for each reply before its next command never gets past MAIL (it times out): only a client
that pipelines is served. It refuses RCPT for `refused@` and still answers DATA with 354, the
case RFC 2920 3.1 warns about: the client must end that DATA with a lone ".".
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from reference_impl.protocol.meta import HEADER_NAME
from reference_impl.sender import errors as e
from reference_impl.sender.campaign import Campaign
from reference_impl.sender.provider import Provider

pytestmark = pytest.mark.e2e


class GroupingServer:
    """A scripted SMTP server on a real socket that serves pipelined transactions only."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.bodies: list[bytes] = []
        self.groups: list[list[bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                with suppress(OSError):
                    self._session(conn, conn.makefile("rb"))

    def _session(self, conn: socket.socket, reader: object) -> None:
        readline = reader.readline  # type: ignore[attr-defined]
        conn.sendall(b"220 grouping.test ESMTP\r\n")
        readline()  # EHLO
        conn.sendall(b"250-grouping.test\r\n250-PIPELINING\r\n250 HELP\r\n")
        while True:
            line = readline()
            verb = line[:4].upper()
            if verb in (b"QUIT", b""):
                conn.sendall(b"221 bye\r\n")
                return
            if verb == b"RSET":
                conn.sendall(b"250 reset\r\n")
                continue
            group = [line, readline(), readline()]  # MAIL, RCPT, DATA: nothing said before all
            if not group[2]:
                return  # the client gave up waiting: it did not pipeline
            self.groups.append(group)
            refused = b"refused@" in group[1]
            conn.sendall(
                b"250 sender ok\r\n"
                + (b"550 5.1.1 no such user\r\n" if refused else b"250 rcpt ok\r\n")
                + b"354 go ahead\r\n"
            )
            body = b""
            while (chunk := readline()) != b".\r\n":
                if not chunk:
                    return
                body += chunk
            self.bodies.append(body)
            conn.sendall(b"554 5.5.1 no valid recipients\r\n" if refused else b"250 queued\r\n")

    @contextmanager
    def running(self) -> Iterator[GroupingServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._listener.close()


def test_mail_rcpt_and_data_go_as_one_group_and_a_refused_rcpt_is_reported_as_without_it() -> None:
    """A refused RCPT is `SMTP invalid email ID` for that recipient only (its DATA ended with a
    lone "."), the session is reset and serves the next recipient on the same connection."""
    with GroupingServer().running() as server:
        provider = Provider("p", "127.0.0.1", server.port, "news@acme.example", timeout=2.0)
        report = Campaign(
            provider,
            ["refused@example.com", "ok@example.com", "ok2@example.com"],
            "wzrk_default",
            connections=1,
        ).run()
    assert {r.recipient: r.error for r in report.results} == {
        "refused@example.com": e.INVALID_EMAIL,
        "ok@example.com": None,
        "ok2@example.com": None,
    }
    failure = report.results[0].failure
    assert failure is not None
    assert (failure.stage, failure.code, failure.detail) == (e.RCPT, 550, "550 5.1.1 no such user")
    assert server.connections == 1
    assert [g[0][:10] for g in server.groups] == [b"mail FROM:"] * 3
    assert server.bodies[0] == b"", "the refused recipient's DATA carried no message"
    for body, result in zip(server.bodies[1:], report.results[1:], strict=True):
        assert f"{HEADER_NAME}: {result.meta}\r\n".encode() in body
