"""How a misbehaving ESP changes the meta before echoing it (`callbacks.meta_mangling`). Pure.

The fake ESP itself never parses the header with the email package (see `headers.py`): a
well-behaved vendor must return the meta byte-exact. This module plays, on purpose, a vendor that
does, so certification and receivers can be tested against the mangling real vendors produce.
"""

from __future__ import annotations

import email
from email import errors, policy
from email.message import EmailMessage

from simulator.errors import SimulatorError
from simulator.esp.headers import META_HEADER

NO_MANGLING = "none"
PYTHON_EMAIL = "python-email"
_NAME = META_HEADER.decode("ascii")


class MetaManglingError(SimulatorError, ValueError):
    """The email package refused the value; the caller echoes it unchanged instead."""


def python_email(meta: str) -> str:
    """The meta as a Python ESP built on the stdlib email package hands it back.

    It sets the header on an `EmailMessage(policy=policy.SMTP)`, writes it, parses the bytes back
    with `policy.default` and takes the value as text, CR and LF removed. The writer folds a value
    that does not fit after the header name onto a continuation line, and on Python 3.11 (cpython
    gh-124452, fixed in 3.12.8/3.13.1) the parser keeps the folding space: on 3.11.7 a meta of 61
    to 77 characters comes back with one leading space. Shorter ones come back unchanged, longer
    ones are RFC 2047-encoded by the writer and decoded by the parser, so also come back
    unchanged (docs/simulator.md lists measured values).
    """
    message = EmailMessage(policy=policy.SMTP)
    try:
        message[_NAME] = meta
        wire = message.as_bytes()
    except (ValueError, TypeError, errors.MessageError) as exc:
        raise MetaManglingError(f"the email package refused the meta: {exc}") from exc
    parsed = email.message_from_bytes(wire, policy=policy.default)
    value = parsed[_NAME]
    if value is None:
        raise MetaManglingError("the email package lost the header on the way back")
    return str(value).replace("\r", "").replace("\n", "")


MANGLERS = {PYTHON_EMAIL: python_email}


def mangle(meta: str, mode: str) -> str:
    """The meta after the scenario's mangling; `none` returns it unchanged."""
    if mode == NO_MANGLING:
        return meta
    return MANGLERS[mode](meta)
