"""The pieces behind the `fake_esp` and `smtp_sender` fixtures, usable without pytest too.

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

from simulator.conformance.strategies import build_meta

META_HEADER = "X-CleverTap_META"
DEFAULT_SCENARIO = "smoke"
DEFAULT_ACCOUNT_ID = 1568798080


@contextmanager
def started_fake_esp(
    callback_url: str, scenario: str | None = None, **options: Any
) -> Iterator[Any]:
    """Run `FakeESP` for `scenario`, plain SMTP on a free loopback port by default."""
    from simulator.esp.server import FakeESP

    options.setdefault("tls", "none")
    with FakeESP(scenario or DEFAULT_SCENARIO, callback_url, **options) as esp:
        yield esp


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
