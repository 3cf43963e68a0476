"""The SMTP session against servers that misbehave before their greeting, over real sockets.

PROTOCOL.md section 6: "SMTP connection error | connect refused, TLS handshake or AUTH fails,
connection closed before the greeting" and "SMTP timeout | any stage stalls past the configured
timeout, the greeting included". A stall is not retried (a new attempt would only wait again); a
connection closed before the greeting is retried like any set-up failure a new connection may fix.
With implicit TLS (`smtps`) the handshake comes before the greeting, so there the close fails the
handshake and the stall times it out: the same two errors.
"""

from __future__ import annotations

import ssl

import pytest

from reference_impl.sender import errors as e
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import SendFailed, open_session
from tests.pregreeting import CLOSE, STALL, PreGreetingServer

RETRIES = 2
SCHEMES = ("smtp", "starttls", "smtps")


def _open(port: int, timeout: float, scheme: str = "smtp") -> e.Failure:
    provider = Provider(
        "p", "127.0.0.1", port, "a@platform.example", timeout=timeout, scheme=scheme
    )
    with pytest.raises(SendFailed) as raised:
        open_session(
            provider, ssl.create_default_context(), None, retries=RETRIES, sleep=lambda _: None
        )
    return raised.value.failure


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_greeting_slower_than_the_timeout_is_smtp_timeout_and_not_retried(scheme: str) -> None:
    with PreGreetingServer(STALL).running() as server:
        failure = _open(server.port, timeout=0.3, scheme=scheme)
    assert e.classify(failure) == e.TIMEOUT
    assert failure.timed_out and not failure.retryable
    if scheme != "smtps":
        assert failure.stage == e.GREETING
        assert "no greeting within 0.3 s" in failure.detail
    assert server.accepted == 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_connection_closed_before_the_greeting_is_a_connection_error_and_retried(
    scheme: str,
) -> None:
    with PreGreetingServer(CLOSE).running() as server:
        failure = _open(server.port, timeout=5.0, scheme=scheme)
    assert e.classify(failure) == e.CONNECTION_ERROR
    assert not failure.timed_out
    if scheme != "smtps":
        assert failure.stage == e.GREETING
        assert "closed the connection before its greeting" in failure.detail
    assert server.accepted == RETRIES + 1
