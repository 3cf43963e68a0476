"""Sender-side error classification (PROTOCOL.md section 6), as a pure table."""

from __future__ import annotations

import pytest

from reference_impl.sender import errors as e


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (e.Failure(e.ADDRESS, "recipient is empty"), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "550 5.1.1 User unknown", 550), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "553 5.1.3 Bad destination mailbox", 553), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "501 Syntax error in parameters", 501), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "551 5.1.6 User not local", 551), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "554 5.1.2 Bad destination system", 554), e.INVALID_EMAIL),
        (e.Failure(e.RCPT, "452 4.2.2 Mailbox full", 452), e.DISPATCHING_FAILED),
        (e.Failure(e.RCPT, "450 4.2.1 Mailbox busy", 450), e.DISPATCHING_FAILED),
        (e.Failure(e.RCPT, "554 5.10.1 Not addressing", 554), e.DISPATCHING_FAILED),
        (e.Failure(e.MAIL, "550 5.7.1 Sender refused", 550), e.DISPATCHING_FAILED),
        (e.Failure(e.DATA, "451 4.3.0 Local error", 451), e.DISPATCHING_FAILED),
        (e.Failure(e.DATA, "SMTPServerDisconnected"), e.DISPATCHING_FAILED),
        (e.Failure(e.SENDER, "unexpected KeyError"), e.DISPATCHING_FAILED),
        (e.Failure(e.CONNECT, "ConnectionRefusedError"), e.CONNECTION_ERROR),
        (e.Failure(e.GREETING, "554 5.3.2 No SMTP service here", 554), e.CONNECTION_ERROR),
        (e.Failure(e.EHLO, "421 4.3.2 Service not available", 421), e.CONNECTION_ERROR),
        (e.Failure(e.TLS, "SSLCertVerificationError"), e.CONNECTION_ERROR),
        (
            e.Failure(e.AUTH, "535 5.7.8 Authentication credentials invalid", 535),
            e.CONNECTION_ERROR,
        ),
        (e.Failure(e.CONNECT, "timed out", timed_out=True), e.TIMEOUT),
        (e.Failure(e.RCPT, "timed out", timed_out=True), e.TIMEOUT),
        (e.Failure(e.DATA, "timed out", timed_out=True), e.TIMEOUT),
    ],
)
def test_each_failure_maps_to_its_section_6_error(failure: e.Failure, expected: str) -> None:
    assert e.classify(failure) == expected


def test_the_four_errors_are_the_vendor_page_strings() -> None:
    assert e.ERRORS == (
        "SMTP invalid email ID",
        "SMTP dispatching failed",
        "SMTP connection error",
        "SMTP timeout",
    )
