"""Benchmark: the sender against the sender as issue 13 measured it, messages per CPU second.

The same campaign (`bounceback send`'s `Campaign`: one message per recipient, meta, signed
`List-Unsubscribe`, body link) goes to a bare aiosmtpd sink in a process of its own, round by
round (A B A B ...) because the machine is shared. The sink advertises PIPELINING, as Postfix and
the large ESPs do (aiosmtpd reads commands as a stream but does not say so). The sender writes
each recipient's headers into the campaign's message built once (`Template`) and sends MAIL,
RCPT and DATA as one group (`transaction`). The baseline, kept only here, is the sender of the
issue: an `EmailMessage` built and serialised per recipient, and smtplib's `mail`, `rcpt` and
`data`, one round trip each (`--baseline build` keeps the current session for both, the last
round's baseline, to show what the template alone gives). With `--store` both record into a real
SQLite store: the sender in batched transactions, the baseline in one transaction per message.

The figure is messages per CPU second of the sending process (this one: `time.process_time`, all
its threads), min / median / max per sender; the last line is `ratio=<median new / baseline>`.

Run: `.venv/bin/python bench/sender.py [--rounds 5 --messages 2000 --connections 4 --store]
[--baseline issue|build]`.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from _procs import python, spread, start, stop
from esp_smtp import PIPELINING_SERVER

import reference_impl.sender.campaign as campaign
from reference_impl.protocol.links import LinkKey
from reference_impl.protocol.meta import Meta
from reference_impl.receiver.store import SQLiteStore
from reference_impl.sender import errors as e
from reference_impl.sender.message import Template, build_message, to_bytes
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import SendFailed, SmtpSession, open_session

LABEL = "wzrk_default"
RECEIVER = "http://127.0.0.1:9"
BATCH_SIZE = campaign.BATCH_SIZE


class StdlibBuild(Template):
    """The baseline: every message built and serialised by the stdlib email package."""

    def render(self, meta: Meta, meta_text: str | None = None) -> bytes:
        return to_bytes(
            build_message(self.provider, meta, receiver_url=self.receiver_url, content=self.content)
        )


class SmtplibSession(SmtpSession):
    """The baseline's transaction: smtplib's `mail`, `rcpt` and `data`, a round trip each."""

    def send(self, recipient: str, data: bytes) -> None:
        client = self.client
        if client is None:
            raise SendFailed(e.Failure(e.CONNECT, "the session is not open"))
        for stage, (code, text) in (
            (e.MAIL, client.mail(self.provider.from_address)),
            (e.RCPT, client.rcpt(recipient)),
            (e.DATA, client.data(data)),
        ):
            if code not in (250, 251):
                client.rset()
                raise SendFailed(e.Failure(stage, f"{code} {text!r}", code))


def open_smtplib_session(
    provider: Provider, context: ssl.SSLContext, password: str | None, retries: int
) -> SmtpSession:
    """`open_session` for the baseline; the sink is local and reliable, so no retries."""
    session = SmtplibSession(provider, context, password)
    session.open()
    return session


def one_round(
    port: int,
    messages: int,
    connections: int,
    run: int,
    baseline: bool,
    store_dir: Path | None,
    smtplib_baseline: bool = True,
) -> float:
    """Messages per CPU second of this process for one campaign."""
    provider = Provider(
        "bench",
        "127.0.0.1",
        port,
        "news@acme.example",
        from_name="Acme",
        preference_center="clevertap",
        link_key=LinkKey("k1", b"bench-secret-0123456789"),
    )
    recipients = [f"user{n}.r{run}@example.com" for n in range(messages)]
    store = SQLiteStore(store_dir / f"r{run}.db") if store_dir is not None else None
    campaign.Template = StdlibBuild if baseline else Template  # type: ignore[misc]
    campaign.BATCH_SIZE = 1 if baseline else BATCH_SIZE
    if baseline and smtplib_baseline:
        campaign.open_session = open_smtplib_session  # type: ignore[assignment]
    try:
        cpu = time.process_time()
        report = campaign.Campaign(
            provider,
            recipients,
            LABEL,
            store=store,
            receiver_url=RECEIVER,
            connections=connections,
        ).run()
        cpu = time.process_time() - cpu
    finally:
        campaign.Template = Template  # type: ignore[misc]
        campaign.BATCH_SIZE = BATCH_SIZE
        campaign.open_session = open_session
        if store is not None:
            store.close()
    if len(report.sent) != messages or report.record_errors:
        raise SystemExit(f"round {run}: {len(report.failed)} failed, {report.record_errors[:3]}")
    return messages / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=campaign.DEFAULT_CONNECTIONS)
    parser.add_argument("--store", action="store_true", help="record into a SQLite store too")
    parser.add_argument(
        "--baseline",
        choices=("issue", "build"),
        default="issue",
        help="issue: stdlib build and smtplib's commands; build: stdlib build, current session",
    )
    args = parser.parse_args()
    sink, port = start([python(), "-c", PIPELINING_SERVER])
    rates: dict[str, list[float]] = {"sender": [], "baseline": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            store_dir = Path(folder) if args.store else None
            for n in range(args.rounds):
                for name, baseline in (("sender", False), ("baseline", True)):
                    run = 2 * n + baseline
                    rate = one_round(
                        port,
                        args.messages,
                        args.connections,
                        run,
                        baseline,
                        store_dir,
                        smtplib_baseline=args.baseline == "issue",
                    )
                    rates[name].append(rate)
                    print(f"round {n + 1} {name}: {rate:,.0f} messages per CPU second", flush=True)
    finally:
        stop(sink)
    store = "with --store" if args.store else "no store"
    print(
        f"{args.messages} messages a round, {args.connections} connections, {store},"
        f" baseline {args.baseline}"
    )
    for name, values in rates.items():
        print(f"{name:9} messages per CPU second (min / median / max): {spread(values, 0)}")
    ratio = statistics.median(rates["sender"]) / statistics.median(rates["baseline"])
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
