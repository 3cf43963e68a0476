"""Sender authentication at the fake ESP: DKIM, SPF and DMARC verdicts, and what they do.

Pure: the verdicts read the message bytes and the scenario's small DNS zone (`zone.py`), never
the network, and never change the bytes. `verify.authenticate` gives a message's `Verdicts`;
`results` writes them as an RFC 8601 `Authentication-Results` header; `rules` applies the
bulk-sender rules and the blocklist of the scenario's `[enforcement]`. The aiosmtpd handler
calls them at MAIL FROM and DATA. docs/simulator.md, "Authentication".
"""

from __future__ import annotations

from simulator.esp.auth.message import MessageFacts, read_facts
from simulator.esp.auth.results import RESULTS, Verdicts, header_value, stamp
from simulator.esp.auth.rules import (
    ACTIONS,
    RULES,
    AuthSettings,
    Blocklist,
    Enforcement,
    Judgement,
    judge,
    judge_mail,
)
from simulator.esp.auth.verify import authenticate
from simulator.esp.auth.zone import Zone

__all__ = [
    "ACTIONS",
    "RESULTS",
    "RULES",
    "AuthSettings",
    "Blocklist",
    "Enforcement",
    "Judgement",
    "MessageFacts",
    "Verdicts",
    "Zone",
    "authenticate",
    "header_value",
    "judge",
    "judge_mail",
    "read_facts",
    "stamp",
]
