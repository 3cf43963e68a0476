"""Helpers to send real mail as the platform would, and to read the reference receiver.

The `receiver` fixture (the reference receiver on a free port) comes from tests/conftest.py.
"""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx

from reference_impl.protocol.meta import Meta
from reference_impl.receiver.server import RunningReceiver
from simulator.esp.outcomes import Decider
from simulator.esp.scenario import load_scenario

ACCOUNT_ID = 1568798080
SENT_AT = 1730714617
FAST_RETRIES = (0.05, 0.1, 0.2)


def meta_for(email: str, message_id: int, label: str = "wzrk_default") -> str:
    """The platform side of the header: tests may use the codec, the simulator never does."""
    return Meta(email, ACCOUNT_ID, SENT_AT, 0, label, message_id).encode()


# RFC 5322's line limit. With the default 78, the stdlib writes a meta over ~78 characters as
# RFC 2047 encoded-words, which the ESP decodes by default and a scenario with
# `meta_encoded_words = "echo"` echoes as written (docs/simulator.md, "The meta header").
PLATFORM_POLICY = policy.SMTP.clone(max_line_length=998)


def message(recipient: str, meta: str | None, subject: str = "hello") -> EmailMessage:
    mail = EmailMessage(policy=PLATFORM_POLICY)
    mail["From"] = "campaigns@platform.example"
    mail["To"] = recipient
    mail["Subject"] = subject
    if meta is not None:
        mail["X-CleverTap_META"] = meta
    mail.set_content("A campaign body.\n")
    return mail


def send_campaign(
    port: int,
    recipients: list[str],
    first_message_id: int = -17005000,
    tls: ssl.SSLContext | None = None,
) -> dict[str, str]:
    """One message per recipient over one smtplib session; returns recipient -> meta."""
    metas = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if tls is not None:
            client.starttls(context=tls)
        for offset, recipient in enumerate(recipients):
            meta = meta_for(recipient, first_message_id - offset)
            client.send_message(message(recipient, meta))
            metas[recipient] = meta
    return metas


def get_json(rx: RunningReceiver, path: str, **params: Any) -> Any:
    response = httpx.get(rx.url + path, params=params, timeout=10)
    response.raise_for_status()
    return response.json()


MAX_PAGES = 1000


def read_all(rx: RunningReceiver, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged read-API list, following `next` (passed back as `after`)."""
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        document = get_json(rx, path, **params)
        items += document[key]
        if document.get("next") is None:
            return items
        params = {**params, "after": document["next"]}
    raise AssertionError(f"{path} still had a next page after {MAX_PAGES} pages")


def system_events(rx: RunningReceiver, kind: str | None = None) -> list[dict[str, Any]]:
    params = {"type": kind} if kind else {}
    return read_all(rx, "/api/events", "events", **params)


def expected_outcomes(scenario: str, seed: int, metas: dict[str, str]) -> dict[str, str]:
    """recipient -> outcome, computed by the same pure decision the ESP makes."""
    decider = Decider(load_scenario(scenario), seed)
    return {rcpt: decider.decide("meta:" + meta, rcpt).outcome for rcpt, meta in metas.items()}


RAISES = {
    "hard_bounce": ("Notification Failed", "Channel Unsubscribed"),
    "soft_bounce": ("Notification Failed",),
    "spam": ("Channel Unsubscribed",),
    "unsubscribed": ("Channel Unsubscribed",),
    "delivered": (),
}


def assert_each_event_once(rx: RunningReceiver, outcomes: dict[str, str]) -> None:
    """Every expected system event arrived exactly once, attributed to the right profile."""
    raised: dict[tuple[str, str], list[str]] = {}
    for event in system_events(rx):
        raised.setdefault((event["profile"], event["type"]), []).append(event["name"])
    expected = {
        (rcpt.lower(), outcome): sorted(RAISES[outcome])
        for rcpt, outcome in outcomes.items()
        if RAISES[outcome]
    }
    assert {key: sorted(names) for key, names in raised.items()} == expected
