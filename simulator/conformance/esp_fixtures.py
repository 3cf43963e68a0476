"""The pieces behind the `fake_esp`, `fake_esp_control` and `smtp_sender` fixtures, usable
without pytest too.

`SmtpSender` writes the message bytes itself, so `X-CleverTap_META` goes out on one line exactly
as given: PROTOCOL.md section 2 warns that `email.policy.SMTP` folds a long meta and that the
folded value may come back with a leading space.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.conformance.strategies import build_meta

META_HEADER = "X-CleverTap_META"
DEFAULT_SCENARIO = "smoke"
DEFAULT_ACCOUNT_ID = 1568798080


@contextmanager
def started_fake_esp(
    callback_url: str, scenario: str | None = None, **options: Any
) -> Iterator[Any]:
    """Run `FakeESP` for `scenario`, plain SMTP on a free loopback port by default, with its API
    (dashboard, controls, reset) on another free loopback port."""
    from simulator.esp.server import FakeESP

    options.setdefault("tls", "none")
    options.setdefault("api_port", 0)
    with FakeESP(scenario or DEFAULT_SCENARIO, callback_url, **options) as esp:
        yield esp


@dataclass
class ESPControl:
    """A running fake ESP's runtime controls and reset, over its HTTP API (docs/simulator.md).

    A wrong change raises the ESP's `ControlError`, naming every wrong key; a reset that found a
    callback POST in flight too long raises `ESPTimeout` (nothing was removed).
    """

    url: str
    token: str | None = None
    timeout: float = 60.0

    def _call(self, method: str, path: str, document: Any = None) -> Any:
        from simulator.esp.controls import ControlError
        from simulator.esp.server import ESPTimeout

        headers = {"X-Bounceback-Source": "pytest"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        response = httpx.request(
            method, self.url + path, json=document, headers=headers, timeout=self.timeout
        )
        body = response.json()
        if response.status_code == 400 and "problems" in body:
            raise ControlError([(p["key"], p["reason"]) for p in body["problems"]])
        if response.status_code == 409:
            raise ESPTimeout(body["error"])
        response.raise_for_status()
        return body

    def chaos(self) -> dict[str, Any]:
        """The current controls (`GET /api/chaos`)."""
        return dict(self._call("GET", "/api/chaos"))

    def change(self, document: dict[str, Any]) -> list[str]:
        """Apply a (partial) controls document; the lines that changed."""
        return list(self._call("PUT", "/api/chaos", document)["changes"])

    def fault(self, stage: str, rate: float, reply: str | None = None) -> list[str]:
        """Answer `stage` (connect, rcpt, data) with `reply` at `rate`, from now on."""
        fault: dict[str, Any] = {"rate": rate}
        if reply is not None:
            fault["reply"] = reply
        return self.change({"faults": {stage: fault}})

    def outcomes(self, **rates: float) -> list[str]:
        """New outcome rates (the five must still sum to 1)."""
        return self.change({"outcomes": rates})

    def pause(self) -> list[str]:
        return self.change({"delivery": {"paused": True}})

    def resume(self) -> list[str]:
        return self.change({"delivery": {"paused": False}})

    def receiver_down(self, down: bool = True) -> list[str]:
        """Treat the receiver as down (every attempt fails and is retried) or back up."""
        return self.change({"delivery": {"receiver_down": down}})

    def restore(self) -> dict[str, Any]:
        """Back to the scenario's controls."""
        return dict(self._call("DELETE", "/api/chaos")["controls"])

    def reset(self) -> dict[str, int]:
        """Empty the spool (messages, events, batches, attempts, dead letters, refusals)."""
        return dict(self._call("DELETE", "/api/state")["removed"])


def control_for(esp: Any) -> ESPControl:
    return ESPControl(esp.api_url, esp.read_token)


@dataclass
class SmtpSender:
    """Sends test mail to an SMTP server, each message stamped with a fresh meta."""

    host: str
    port: int
    from_address: str = "campaigns@bounceback.test"
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(recipient, meta) of every message sent, in order."""

    def meta_for(self, recipient: str, message_id: int | None = None) -> str:
        return build_meta(
            recipient,
            DEFAULT_ACCOUNT_ID,
            int(time.time()),
            0,
            "wzrk_default",
            uuid.uuid4().int % (2**62) if message_id is None else message_id,
        )

    def send(
        self, recipient: str, *, meta: str | None = None, subject: str = "bounceback test"
    ) -> str:
        """Send one message and return the meta it carried."""
        meta = meta if meta is not None else self.meta_for(recipient)
        message = "\r\n".join(
            [
                f"From: {self.from_address}",
                f"To: {recipient}",
                f"Subject: {subject}",
                f"Message-ID: <{uuid.uuid4().hex}@bounceback.test>",
                f"{META_HEADER}: {meta}",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "This is a bounceback test message.",
                "",
            ]
        ).encode("utf-8")
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            smtp.sendmail(self.from_address, [recipient], message)
        self.sent.append((recipient, meta))
        return meta


def sender_for(esp: Any) -> SmtpSender:
    return SmtpSender(esp.host, esp.port)
