"""The four sender-side errors of PROTOCOL.md section 6 and the pure rule that picks one.

The I/O layer describes what went wrong as a `Failure` (stage, reply code, enhanced status,
whether it timed out); `classify` maps it to an error name. Reading of the table, where it is
loose (docs/sender.md, "Error classification"):

- a timeout at any stage is SMTP timeout;
- setting up the session (connect, greeting, EHLO, STARTTLS or TLS, AUTH) is SMTP connection
  error, whatever the reply: AUTH is after the greeting, yet the table lists it there;
- RCPT refused with 501, 550, 551 or 553, or with an X.1.x (addressing) enhanced status, or an
  address refused before sending, is SMTP invalid email ID; any other RCPT refusal (452 mailbox
  full, 450) means the message could not be dispatched;
- MAIL FROM or DATA refused, or the session breaking during the transaction, is SMTP
  dispatching failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CONNECTION_ERROR",
    "DISPATCHING_FAILED",
    "ERRORS",
    "INVALID_EMAIL",
    "TIMEOUT",
    "Failure",
    "classify",
]

INVALID_EMAIL = "SMTP invalid email ID"
DISPATCHING_FAILED = "SMTP dispatching failed"
CONNECTION_ERROR = "SMTP connection error"
TIMEOUT = "SMTP timeout"
ERRORS = (INVALID_EMAIL, DISPATCHING_FAILED, CONNECTION_ERROR, TIMEOUT)

# Stages, in session order. `address` is the sender's own check before anything is sent.
ADDRESS = "address"
CONNECT = "connect"
GREETING = "greeting"
EHLO = "ehlo"
TLS = "tls"
AUTH = "auth"
MAIL = "mail"
RCPT = "rcpt"
DATA = "data"
# The sender's own fault while handling one message (a bug): that message was not dispatched.
SENDER = "sender"
SETUP_STAGES = (CONNECT, GREETING, EHLO, TLS, AUTH)
INVALID_RCPT_CODES = frozenset({501, 550, 551, 553})
_ENHANCED = re.compile(r"\b([245])\.([0-9]{1,3})\.([0-9]{1,3})\b")


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one message, as the session saw it."""

    stage: str
    detail: str
    code: int | None = None
    timed_out: bool = False
    retryable: bool = False

    @property
    def enhanced_status(self) -> str | None:
        found = _ENHANCED.search(self.detail)
        return found.group(0) if found else None

    def describe(self) -> str:
        """The section 6 error, where it happened and the server's own words, on one line."""
        return f"{classify(self)} at {self.stage}: {self.detail}"


def classify(failure: Failure) -> str:
    """The section 6 error for `failure`."""
    if failure.timed_out:
        return TIMEOUT
    if failure.stage == ADDRESS:
        return INVALID_EMAIL
    if failure.stage in SETUP_STAGES:
        return CONNECTION_ERROR
    if failure.stage == RCPT:
        status = failure.enhanced_status
        if failure.code in INVALID_RCPT_CODES or (status is not None and status[2:4] == "1."):
            return INVALID_EMAIL
    return DISPATCHING_FAILED
