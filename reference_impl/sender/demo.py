"""`bounceback demo`: the whole loop on one machine, then a summary that says whether it held.

Receiver (temporary SQLite file, free port) <- callbacks <- fake ESP (`mixed` scenario, STARTTLS
with a throwaway CA, AUTH) <- SMTP <- a campaign to Faker recipients. Everything the summary
reports is read back through the receiver's HTTP read API, and the attribution check works from the
raw callback bodies the receiver logged (see `attribution`).

Then a second campaign to the same audience shows suppression: it is smaller, for it must skip
exactly the profiles the first one unsubscribed (hard bounce, spam, unsubscribe; never
a soft bounce), and the attribution check covers both campaigns.
"""

from __future__ import annotations

import secrets
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from faker import Faker
from rich.console import Console
from rich.table import Table

from reference_impl.protocol.links import LinkKey
from reference_impl.receiver.server import RunningReceiver, running_receiver
from reference_impl.receiver.store import SentMessage
from reference_impl.sender.attribution import Attribution, check_attribution
from reference_impl.sender.campaign import Campaign, CampaignReport
from reference_impl.sender.progress import campaign_progress
from reference_impl.sender.provider import Provider
from reference_impl.sender.suppression import StoreSuppression
from simulator.esp.server import ESPTimeout, FakeESP

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_SCENARIO",
    "DemoSummary",
    "run_demo",
]


DEFAULT_AUDIENCE = 300
DEFAULT_SCENARIO = "mixed"
DEMO_LABEL = "bounceback_demo"
FOLLOWUP_LABEL = "bounceback_demo_followup"
DEMO_USER = "demo"
DEMO_LINK_KEY_ID = "demo"
# How long the demo waits for the fake ESP to deliver every callback: a condition (all messages
# spooled, no event or batch pending), bounded generously because a loaded machine is slow, and
# an ESPTimeout naming the counts when it is not met. It was 60 s and a timeout was only
# printed, so the follow-up read a receiver still missing callbacks.
CALLBACK_DEADLINE = 300.0
# The demo's fake ESP retries a callback post that failed or timed out within seconds: with the
# scenario's Mailgun schedule the first retry came after 300 s, past any wait, so one answer slower
# than the post timeout (a loaded machine) left its events out of the follow-up's suppression.
DEMO_RETRY_SCHEDULE = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
DEMO_CALLBACK_TIMEOUT = 30.0
PAGE = 1000


@dataclass
class DemoSummary:
    campaign: CampaignReport
    attribution: Attribution
    callbacks: int = 0
    system_events: Counter[str] = field(default_factory=Counter)
    unsubscribed: list[str] = field(default_factory=list)
    still_subscribed: list[str] = field(default_factory=list)
    label_report: dict[str, Any] = field(default_factory=dict)
    receiver_url: str = ""
    followup: CampaignReport | None = None
    # Of the follow-up's audience: unsubscribed by the first campaign yet mailed, or skipped
    # without having been unsubscribed. Both must be empty.
    not_suppressed: list[str] = field(default_factory=list)
    wrongly_suppressed: list[str] = field(default_factory=list)
    # Callback batches the fake ESP gave up on: their events never reached the receiver.
    dead_letters: int = 0

    @property
    def ok(self) -> bool:
        reports = [self.campaign] + ([self.followup] if self.followup is not None else [])
        return (
            self.attribution.ok
            and not self.still_subscribed
            and not any(r.record_errors for r in reports)
            and not self.not_suppressed
            and not self.wrongly_suppressed
            and not self.dead_letters
        )


def _audience(size: int, seed: int) -> list[str]:
    """`size` distinct, reproducible, obviously fake addresses."""
    fake = Faker()
    fake.seed_instance(seed)
    return [fake.unique.email(safe=True) for _ in range(size)]


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def _all_pages(client: httpx.Client, path: str, key: str, **query: Any) -> list[dict[str, Any]]:
    """Every item of a paged read, following `next` (the following page's `after`) to null;
    `query` is sent with every page."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {**query, "limit": PAGE}
    while True:
        document = _get(client, path, **params)
        found.extend(document[key])
        if document.get("next") is None:
            return found
        params = {**query, "limit": PAGE, "after": document["next"]}


def _unsubscribed(client: httpx.Client) -> list[str]:
    events = _all_pages(client, "/api/events", "events")
    return sorted({e["profile"] for e in events if e["name"] == "Channel Unsubscribed"})


def _summarise(
    rx: RunningReceiver, report: CampaignReport, followup: CampaignReport | None = None
) -> DemoSummary:
    """Read what the receiver made of the campaigns, and check attribution over both."""
    labels = {report.label} | ({followup.label} if followup is not None else set())
    with httpx.Client(base_url=rx.url, timeout=30) as client:
        # The attribution check reads every event of every body: the list gives summaries only.
        callbacks = _all_pages(client, "/api/callbacks", "callbacks", body="true")
        sent = [
            SentMessage(**item)
            for item in _all_pages(client, "/api/sent", "sent")
            if item["label"] in labels
        ]
        events = _all_pages(client, "/api/events", "events")
        unsubscribed = _unsubscribed(client)
        still = [
            email
            for email in unsubscribed
            if _get(client, f"/api/profiles/{quote(email, safe='@')}")["subscribed"]
        ]
        response = client.get(f"/api/labels/{quote(report.label, safe='')}")
        label_report = response.json() if response.status_code == 200 else {}
    return DemoSummary(
        campaign=report,
        attribution=check_attribution(sent, callbacks),
        callbacks=len(callbacks),
        system_events=Counter(e["name"] for e in events),
        unsubscribed=unsubscribed,
        still_subscribed=still,
        label_report=label_report,
        receiver_url=rx.url,
        followup=followup,
    )


def _print_summary(console: Console, summary: DemoSummary) -> None:
    report, check = summary.campaign, summary.attribution
    table = Table(title="bounceback demo", show_header=False)
    table.add_row(f"messages sent ({report.label})", str(len(report.sent)))
    table.add_row("send failures", str(len(report.failed)))
    for error, count in sorted(report.errors().items()):
        table.add_row(f"  {error}", str(count))
    table.add_row("callbacks received", str(summary.callbacks))
    table.add_row("callback events", f"{check.events} ({check.duplicates} duplicates ignored)")
    for kind, count in sorted(check.types.items()):
        table.add_row(f"  {kind}", str(count))
    table.add_row("system events", str(sum(summary.system_events.values())))
    for name, count in sorted(summary.system_events.items()):
        table.add_row(f"  {name}", str(count))
    table.add_row("profiles unsubscribed", str(len(summary.unsubscribed)))
    counts = summary.label_report.get("counts", {})
    shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    table.add_row(f"campaign report ({report.label})", f"sent {summary.label_report.get('sent')}")
    table.add_row("", shown or "-")
    verdict = "[green]OK[/]" if summary.ok else "[red]FAILED[/]"
    table.add_row(
        "attribution check",
        f"{verdict}: {check.matched} of {check.sent} sent messages matched to their callback",
    )
    if (followup := summary.followup) is not None:
        causes = Counter(s.cause for s in followup.suppressed)
        table.add_row(
            f"follow-up ({followup.label})",
            f"{len(followup.sent)} sent, {len(followup.failed)} failed,"
            f" {len(followup.suppressed)} suppressed",
        )
        for cause, count in sorted(causes.items()):
            table.add_row(f"  suppressed: {cause}", str(count))
        ok = not summary.not_suppressed and not summary.wrongly_suppressed
        table.add_row(
            "suppression check",
            ("[green]OK[/]" if ok else "[red]FAILED[/]")
            + ": skipped exactly the profiles the first campaign unsubscribed",
        )
    console.print(table)
    for email in summary.not_suppressed[:20]:
        console.print(f"[red]not suppressed[/] {email}: unsubscribed, yet mailed again")
    for email in summary.wrongly_suppressed[:20]:
        console.print(f"[red]wrongly suppressed[/] {email}: never unsubscribed, yet skipped")
    for problem in check.lost[:20]:
        console.print(f"[red]lost[/] {problem.meta}: {problem.reason}")
    for problem in check.misattributed[:20]:
        console.print(f"[red]misattributed[/] {problem.meta}: {problem.reason}")
    for email in summary.still_subscribed[:20]:
        console.print(
            f"[red]not unsubscribed[/] {email}: unsubscribe raised, profile still subscribed"
        )
    for problem in report.record_errors[:20]:
        console.print(f"[red]not recorded in the store[/] {problem}")
    hidden = len(check.lost) + len(check.misattributed) + len(summary.still_subscribed) - 60
    if hidden > 0:
        console.print(f"... and {hidden} more problems")


def _wait_for_callbacks(console: Console, esp: FakeESP, messages: int, deadline: float) -> int:
    """Block until the ESP has spooled `messages` mails and answered every callback of them.

    Returns the dead letters (batches the ESP gave up on), which the summary counts as a failure.
    Past `deadline` seconds the ESP's `ESPTimeout` names what is still pending: reading the
    receiver before then would judge a campaign by part of its callbacks.
    """
    try:
        stats = esp.wait_delivered(timeout=deadline, messages=messages)
    except ESPTimeout as exc:
        console.print(f"[red]callbacks incomplete:[/] {exc}")
        raise
    if stats["dead_letters"]:
        console.print(
            f"[red]{stats['dead_letters']} callback batch(es) dead-lettered[/] by the fake ESP:"
            " their events never reached the receiver"
        )
    return int(stats["dead_letters"])


def run_demo(
    console: Console,
    size: int = DEFAULT_AUDIENCE,
    seed: int = 0,
    scenario: str | Path = DEFAULT_SCENARIO,
    keep: bool = False,
    poll_seconds: float = 0.05,
    wait: float = CALLBACK_DEADLINE,
    workdir: Path | None = None,
    on_ready: Callable[[DemoSummary], None] | None = None,
) -> DemoSummary:
    """Run the loop; with `keep`, call `on_ready(summary)` while the receiver still runs."""
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="bounceback-demo-"))
            )
        console.print(f"[bold]1.[/] receiver: SQLite file {workdir / 'receiver.sqlite3'}")
        # One throwaway key, held by the receiver and signing the campaign's preference links.
        link_key = LinkKey(DEMO_LINK_KEY_ID, secrets.token_bytes(32))
        rx = stack.enter_context(
            running_receiver(workdir / "receiver.sqlite3", link_keys=(link_key,))
        )
        console.print(f"   callback URL {rx.callback_url}")
        password = secrets.token_urlsafe(16)
        with ExitStack() as esp_stack:
            esp = esp_stack.enter_context(
                FakeESP(
                    scenario,
                    rx.callback_url,
                    seed=seed,
                    spool=workdir / "esp-spool.sqlite3",
                    tls="starttls",
                    credentials={DEMO_USER: password},
                    poll_seconds=poll_seconds,
                    retry_schedule=DEMO_RETRY_SCHEDULE,
                    callback_timeout=DEMO_CALLBACK_TIMEOUT,
                )
            )
            ca_file = workdir / "esp-ca.pem"
            if esp.ca is not None:
                esp.ca.cert_pem.write_to_path(str(ca_file))
            console.print(
                f"[bold]2.[/] fake ESP: scenario {esp.scenario.name!r}, SMTP 127.0.0.1:{esp.port}"
                " (STARTTLS required, AUTH)"
            )
            provider = Provider(
                nickname="demo",
                host="127.0.0.1",
                port=esp.port,
                from_address="campaigns@demo.bounceback.test",
                scheme="starttls",
                username=DEMO_USER,
                password=password,
                from_name="bounceback demo",
                reply_address="replies@demo.bounceback.test",
                preference_center="clevertap",
                ca_file=str(ca_file),
                timeout=10.0,
                link_key=link_key,
            )
            recipients = _audience(size, seed)
            console.print(
                f"[bold]3.[/] campaign {DEMO_LABEL!r} to {len(recipients)} Faker recipients"
            )
            with campaign_progress(console, len(recipients)) as on_result:
                report = Campaign(
                    provider,
                    recipients,
                    DEMO_LABEL,
                    store=rx.store,
                    receiver_url=rx.url,
                    on_result=on_result,
                ).run()
            console.print(
                f"   {len(report.sent)} sent, {len(report.failed)} failed in {report.seconds:.1f}s;"
                " waiting for callbacks"
            )
            dead = _wait_for_callbacks(console, esp, len(report.sent), wait)
            with httpx.Client(base_url=rx.url, timeout=30) as client:
                expected = set(_unsubscribed(client))
            audience = recipients
            console.print(
                f"[bold]4.[/] follow-up {FOLLOWUP_LABEL!r} to the same {len(audience)} recipients,"
                " unsubscribed profiles suppressed"
            )
            followup_campaign = Campaign(
                provider,
                audience,
                FOLLOWUP_LABEL,
                store=rx.store,
                receiver_url=rx.url,
                suppression=StoreSuppression(rx.store),
            )
            suppressed = followup_campaign.suppressed()
            with campaign_progress(
                console, len(audience) - len(suppressed), len(suppressed)
            ) as on_result:
                followup_campaign.on_result = on_result
                followup = followup_campaign.run(suppressed)
            dead = _wait_for_callbacks(console, esp, len(report.sent) + len(followup.sent), wait)
        console.print("[bold]5.[/] reading the receiver's API")
        summary = _summarise(rx, report, followup)
        skipped = {s.recipient.lower() for s in followup.suppressed}
        should = {r.lower() for r in audience} & expected
        summary.not_suppressed = sorted(should - skipped)
        summary.wrongly_suppressed = sorted(skipped - should)
        summary.dead_letters = dead
        _print_summary(console, summary)
        if keep and on_ready is not None:
            on_ready(summary)
        return summary
