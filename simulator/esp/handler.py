"""The aiosmtpd handler: SMTP stages, faults, and handing accepted mail to the spool.

Thin by design: every decision (fault, outcome, description, mutation) comes from the pure
modules; this only applies it to the session and awaits the spool commit before DATA's 250, so
mail the client believes accepted always has its events on disk.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import random
import re
import weakref
from collections.abc import Iterable
from dataclasses import replace
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from simulator.esp import replies
from simulator.esp.auth import (
    Judgement,
    Verdicts,
    authenticate,
    header_value,
    judge,
    judge_mail,
    read_facts,
    stamp,
)
from simulator.esp.auth.dmarc import suffix_list
from simulator.esp.auth.rules import BOUNCE, REFUSE, SPAM
from simulator.esp.controls import Controls
from simulator.esp.faults import Fault, StageFaults, stage_faults
from simulator.esp.headers import (
    decode_encoded_words,
    extract_header,
    has_encoded_word,
    message_key,
    raw_header,
)
from simulator.esp.mangling import MetaManglingError, mangle
from simulator.esp.outcomes import Decider, rng_for
from simulator.esp.scenario import DELIVERED, Scenario
from simulator.esp.spool import EventRecord, MessageRecord, Refusal, SpoolDiskFull, SpoolWriter
from simulator.protocol.payloads import FAILED, SUCCESS

log = logging.getLogger("simulator.smtp")

AUTH_CLOSED = "AUTH from %s: %d failed attempts on one connection, closed with 421"
REFUSED_SPOOL_FULL = "message from %s refused with 452: spool is %d bytes, quota %d"
REFUSED_DISK_FULL = "message from %s refused with 452: the spool's disk is full; free some space"
REFUSED_OVER_QUOTA = "message from %s refused with 552: %d callback bytes, quota %d"
REFUSED_CONNECTION = "connection from %s refused with 421: %d sessions open, the limit"
AUTH_SLOWED = "AUTH from %s delayed %.2fs after %d failed attempt(s) from that address"
AUTH_BACKOFF_BASE = 0.25
AUTH_BACKOFF_CAP = 8.0
PEERS_REMEMBERED = 10_000
# Bytes a callback event costs beyond its meta and address: keys, type, description.
EVENT_OVERHEAD = 200
NO_META = "message from %s has no X-CleverTap_META: accepted, its callbacks carry no meta"
UNDECODABLE_META = "X-CleverTap_META from %s is not UTF-8; undecodable bytes replaced"
ENCODED_META = (
    "X-CleverTap_META from %s contains an RFC 2047 encoded-word: echoed as written, not decoded"
    " (scenario callbacks.meta_encoded_words = 'echo'); a sender should not encode a meta that"
    " fits a line (e.g. Python: policy.SMTP.clone(max_line_length=998))"
)
UNDECODED_META = (
    "X-CleverTap_META from %s contains an RFC 2047 encoded-word but is not made only of valid"
    " encoded-words: echoed as written"
)
DECODED_META = "X-CleverTap_META from %s was RFC 2047 encoded-words: decoded (%d -> %d bytes)"
MANGLED_META = "X-CleverTap_META from %s echoed mangled (callbacks.meta_mangling = %r): %r -> %r"
UNMANGLEABLE_META = "X-CleverTap_META from %s echoed unchanged: %s (callbacks.meta_mangling = %r)"
WHY_JUDGED = "rule {rule!r} (authentication, blocklist or bulk-sender rules)"
DROPPED_EVENT = "event for %s dropped, never reported (drop_rate of the scenario or its rule)"
REFUSED_BY_RULE = "message from %s refused at %s: %s"
JUDGED_BY_RULE = "message from %s accepted, reported as %s: %s"
# What a rule's `bounce` and `spam` actions report for every recipient of the message.
RULE_OUTCOMES = {BOUNCE: "hard_bounce", SPAM: "spam"}
STALL_FOREVER = 3600.0
# `<local@domain>` with both parts RFC 5322 dot-atoms in ASCII: the address of nearly every
# MAIL and RCPT, parsed without the stdlib's token tree (FaultySMTP._getaddr).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
SIMPLE_ANGLE_ADDR = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>")


def auth_delay(failures: int) -> float:
    """Seconds to wait before answering AUTH from an address that already failed `failures`
    times since its last success: none at first, then doubling to a cap, so a guesser that
    reconnects after each 421 still slows to one guess per AUTH_BACKOFF_CAP seconds."""
    if failures <= 0:
        return 0.0
    return min(AUTH_BACKOFF_CAP, AUTH_BACKOFF_BASE * 2 ** (failures - 1))


def _peer(session: Session) -> str:
    return f"{session.peer[0]}:{session.peer[1]}" if session.peer else "?"


def callback_bytes(record: MessageRecord) -> int:
    """What a message's callbacks will weigh: every event echoes the meta."""
    return sum(len(e.meta or "") + len(e.email) + EVENT_OVERHEAD for e in record.events)


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP with one extra stage, `connect`, before the greeting.

    This overrides the private `_handle_client` because aiosmtpd has no public hook before the
    220 greeting: handler hooks start at HELO, `handle_PROXY` runs only when the client sends a
    PROXY header, and `connection_made` (public, asyncio's) starts `_handle_client` as its own
    task, so it cannot hold the greeting back. Overriding it and calling `super()` first keeps
    all of aiosmtpd's session handling. Checked against aiosmtpd 1.4.6 and its main branch;
    pyproject.toml pins `aiosmtpd>=1.4.6,<1.5` so a release that changes it is checked again.

    Two more overrides remove per-message and per-connection waste in aiosmtpd 1.4.x without
    changing what it accepts (tests/simulator/esp/test_smtp_overrides.py checks both against
    aiosmtpd's originals; pinned `<1.5` for the same reason):

    - `_getaddr` (private; MAIL, RCPT, VRFY): aiosmtpd's defines a `typing.Protocol` class on
      every call, only for a type annotation, which costs more than parsing the address. Ours runs
      the same parse (`get_angle_addr` / `get_addr_spec`, the local-part limit) without it, and
      remembers recent answers (the sender address repeats on every message).
    - `__dir__`, only while `SMTP.__init__` runs: aiosmtpd's `__init__` finds the `auth_*` and
      `smtp_*` methods with `inspect.getmembers(self)` and `dir(self)` on every connection, which
      fetches every attribute of the class. While constructing, `dir()` answers with just those
      names, listed once per class, so the same methods are found; afterwards `dir()` is whole.
      The same goes for the `ESPHandler` it serves (its `handle_*` hooks, fixed at its start).

    And one addition: the EHLO reply lists PIPELINING (RFC 2920), as Postfix and the large ESPs
    do. aiosmtpd already reads commands as a stream and answers them in order, so a client that
    groups MAIL, RCPT and DATA is served correctly; aiosmtpd 1.4 just never says so. The line is
    added by an EHLO hook set in `__init__` (`_handle_hooks`, private), wrapping the handler's
    own hook when the scenario has one, so aiosmtpd's `inspect.signature` of a hook is not paid
    on every connection.
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        self._constructing = True
        if isinstance(handler, ESPHandler):
            handler.listing_hooks = True
        try:
            super().__init__(handler, **kwargs)
        finally:
            del self._constructing
            if isinstance(handler, ESPHandler):
                handler.listing_hooks = False
        self._handle_hooks["EHLO"] = functools.partial(
            _advertise_pipelining, self._handle_hooks.get("EHLO")
        )
        self._ehlo_hook_ver = "new"

    def __dir__(self) -> Iterable[str]:
        if self.__dict__.get("_constructing"):
            return _command_method_names(type(self))
        return super().__dir__()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        addr, rest = parse_address(arg)
        limit = self.local_part_limit
        if addr and limit and len(addr.rpartition("@")[0]) > limit:
            return None, None
        return addr, rest

    async def _handle_client(self) -> None:
        handler = self.event_handler
        if not isinstance(handler, ESPHandler):
            await super()._handle_client()
            return
        if not await handler.admit(self):
            return
        try:
            if await handler.on_connect(self):
                await super()._handle_client()
        finally:
            handler.disconnected()


async def _advertise_pipelining(
    hook: Any,
    server: SMTP,
    session: Session,
    envelope: Envelope,
    hostname: str,
    responses: list[str],
) -> list[str]:
    """aiosmtpd's EHLO lines with PIPELINING before the last; then the handler's own hook."""
    responses = [*responses[:-1], replies.PIPELINING, responses[-1]]
    if hook is not None:
        return list(await hook(server, session, envelope, hostname, responses))
    session.host_name = hostname
    return responses


@functools.cache
def _command_method_names(cls: type) -> tuple[str, ...]:
    """The names aiosmtpd's `SMTP.__init__` looks for on itself: AUTH mechanisms and commands."""
    return tuple(name for name in dir(cls) if name.startswith(("auth_", "smtp_")))


@functools.lru_cache(maxsize=4096)
def parse_address(arg: str) -> tuple[str | None, str | None]:
    """An SMTP command's address argument as aiosmtpd 1.4.x parses it: (address, rest), ("", "")
    for no argument, (None, None) when it does not parse. The local-part limit is the caller's."""
    if not arg:
        return "", ""
    simple = SIMPLE_ANGLE_ADDR.match(arg)
    if simple is not None:
        # What get_angle_addr answers for `<dot-atom@dot-atom>`: the text as written, and the
        # rest with leading whitespace dropped (a comment there takes the full parse).
        rest = arg[simple.end() :]
        if rest[:1] in (" ", "\t"):
            rest = rest.lstrip()
        if not rest.startswith("("):
            return simple.group(1), rest
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    return address.addr_spec, rest


class ESPHandler:
    """aiosmtpd handler hooks (`async handle_<VERB>`) for the fake ESP.

    aiosmtpd awaits a `handle_<VERB>` hook for every command the handler has one for (it lists
    them with `dir()` per session), and each costs coroutines even when it only passes through.
    So a stage that cannot fault under the scenario gets no hook: HELO/EHLO, AUTH and MAIL keep
    aiosmtpd's own handling unless the scenario has faults there (coded addresses count for MAIL).
    RCPT (the recipient limit) and DATA (the spool) always have one.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        writer: SpoolWriter,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.decider = Decider(scenario, seed)
        self.writer = writer
        self.credentials = dict(credentials or {})
        smtp = scenario.smtp
        self.stages = stage_faults(smtp.faults, smtp.address_faults)
        # Faults matched on the login name answer inside the authenticator, not in handle_AUTH.
        self._login_faults = StageFaults.of(smtp.faults, "auth", coded=False)
        self._max_recipients = smtp.max_recipients
        self._spool_quota = smtp.spool_quota
        self._message_quota = smtp.message_quota
        self._max_auth_failures = smtp.max_auth_failures
        self._max_connections = smtp.max_connections
        self._sessions = 0  # admitted by on_connect, not yet ended; touched on the loop only
        # Failed AUTH attempts per session and per peer address (since its last success).
        self._session_failures: weakref.WeakKeyDictionary[Session, int] = (
            weakref.WeakKeyDictionary()
        )
        self._peer_failures: dict[str, int] = {}
        self._fault_rng: random.Random = rng_for(seed, "faults")
        # Runtime controls (controls.py) with a fault rate above 0, handed over whole by the
        # control panel; None otherwise, so a run without runtime faults pays one test per stage.
        self.chaos: Controls | None = None
        if "helo" in self.stages:
            self.handle_HELO = self._helo
            self.handle_EHLO = self._ehlo
        if self.credentials or ("auth" in self.stages and self.stages["auth"].rated):
            self.handle_AUTH = self._auth
        self._authentication = scenario.authentication
        self._blocklist = scenario.blocklist
        self._enforcement = scenario.enforcement
        # Verdicts and rules run at DATA only when the scenario asks for them.
        self._judging = self._authentication is not None or bool(self._blocklist)
        if self._authentication is not None:
            suffix_list()
        listing_at_mail = bool(self._blocklist) and self._enforcement.blocklisted == REFUSE
        if "mail" in self.stages or listing_at_mail:
            self.handle_MAIL = self._mail
        # What aiosmtpd's SMTP.__init__ looks up on a handler; see FaultySMTP.
        self._hook_names = tuple(
            name for name in object.__dir__(self) if name.startswith(("handle_", "auth_"))
        )
        self.listing_hooks = False

    def __dir__(self) -> Iterable[str]:
        """While a FaultySMTP is being built (`listing_hooks`), just the hooks aiosmtpd seeks."""
        if self.listing_hooks:
            return self._hook_names
        return super().__dir__()

    def apply_controls(self, controls: Controls) -> None:
        """A runtime change: its faults answer from the next command on, its outcome rates
        decide from the next message on (a new Decider: the same seeded pool, new rates)."""
        if dict(controls.outcomes) != self.decider.scenario.outcomes:
            scenario = replace(self.scenario, outcomes=dict(controls.outcomes))
            self.decider = Decider(scenario, self.decider.seed)
        self.chaos = controls if any(f.rate > 0 for f in controls.faults.values()) else None

    def _refused(self, stage: str, addresses: tuple[str, ...], judgement: Judgement) -> None:
        """Spool a rule's refusal, for the dashboard's list of what SMTP refused and why."""
        why = WHY_JUDGED.format(rule=judgement.rule)
        self.writer.refused(Refusal(stage, addresses, "reply", judgement.reply, why))

    def _fault(self, stage: str, addresses: tuple[str, ...] = ()) -> Fault | None:
        """The scenario's fault for this stage, else a runtime one; a refusal is spooled."""
        faults = self.stages.get(stage)
        fault = None if faults is None else faults.pick(addresses, self._fault_rng)
        if fault is None and self.chaos is not None:
            fault = self.chaos.fault(stage, self._fault_rng)
        if fault is not None and fault.action != "delay":
            self.writer.refused(Refusal(stage, addresses, fault.action, fault.reply, fault.why))
        return fault

    async def _apply(self, server: SMTP, stage: str, fault: Fault) -> str | None:
        """Carry out a fault: the reply to send instead, or None to go on normally."""
        log.info("fault at %s: %s %s", stage, fault.action, fault.reply or "")
        if fault.action == "delay":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.action == "drop":
            if server.transport is not None:
                server.transport.close()
            # Closing cancels this session's task; wait to be cancelled rather than reply.
            await asyncio.sleep(STALL_FOREVER)
        if fault.action == "stall":
            await asyncio.sleep(fault.seconds)
        return fault.reply

    async def admit(self, server: SMTP) -> bool:
        """Count a new session in, or refuse it with 421 while `smtp.max_connections` are open:
        each may hold a message of up to `max_message_size` in memory while it arrives, so this
        bounds the ESP's memory. An admitted session is counted out by `disconnected`."""
        if self._sessions >= self._max_connections:
            peer = server.session.peer if server.session is not None else "?"
            log.warning(REFUSED_CONNECTION, peer, self._sessions)
            await server.push(replies.TOO_MANY_CONNECTIONS)
            if server.transport is not None:
                server.transport.close()
            return False
        self._sessions += 1
        return True

    def disconnected(self) -> None:
        """A session `admit` counted in has ended."""
        self._sessions -= 1

    async def on_connect(self, server: SMTP) -> bool:
        """The `connect` stage: refuse (554 greeting), drop, delay or stall before the greeting."""
        fault = self._fault("connect")
        if fault is None:
            return True
        if fault.action in ("delay", "stall"):
            await asyncio.sleep(fault.seconds)
            if fault.action == "delay":
                return True
        if fault.action != "drop":
            await server.push(fault.reply or replies.CONNECT_REFUSED)
        if server.transport is not None:
            server.transport.close()
        return False

    async def _helo(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        """handle_HELO, installed only when the scenario has `helo` faults."""
        fault = self._fault("helo")
        if fault is not None and (reply := await self._apply(server, "helo", fault)) is not None:
            return reply
        session.host_name = hostname
        return replies.HELO.format(hostname=server.hostname)

    async def _ehlo(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """handle_EHLO, installed only when the scenario has `helo` faults."""
        fault = self._fault("helo")
        if fault is not None and (reply := await self._apply(server, "helo", fault)) is not None:
            return [reply]
        session.host_name = hostname
        return responses

    async def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        """handle_AUTH, installed when logins can fail: credentials, or `auth` faults by rate.

        An address that failed before waits `auth_delay` first."""
        address = session.peer[0] if session.peer else "?"
        failures = self._peer_failures.get(address, 0)
        if failures:
            delay = auth_delay(failures)
            log.warning(AUTH_SLOWED, address, delay, failures)
            await asyncio.sleep(delay)
        fault = self._fault("auth")
        if fault is None:
            return MISSING
        reply = await self._apply(server, "auth", fault)
        return MISSING if reply is None else reply

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd authenticator for PLAIN and LOGIN; with no credentials configured, any."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
        login = auth_data.login.decode("utf-8", "replace")
        # A fault matched on the login name (rate-based AUTH faults are applied in handle_AUTH).
        fault = self._login_faults.pick((login,))
        if fault is not None and fault.reply is not None:
            log.info("fault at auth for %r: %s", login, fault.reply)
            return AuthResult(success=False, handled=False, message=fault.reply)
        if not self.credentials:
            return AuthResult(success=True, auth_data=login)
        expected = self.credentials.get(login)
        address = session.peer[0] if session.peer else "?"
        if expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), auth_data.password
        ):
            self._peer_failures.pop(address, None)
            return AuthResult(success=True, auth_data=login)
        log.info("AUTH %s refused for %r", mechanism, login)
        return AuthResult(success=False, handled=False, message=self._failed(server, session))

    def _failed(self, server: SMTP, session: Session) -> str:
        """Count a failed AUTH; the reply, 421 (and the connection closed) at the limit."""
        address = session.peer[0] if session.peer else "?"
        if address not in self._peer_failures and len(self._peer_failures) >= PEERS_REMEMBERED:
            self._peer_failures.pop(next(iter(self._peer_failures)))
        self._peer_failures[address] = self._peer_failures.get(address, 0) + 1
        count = self._session_failures.get(session, 0) + 1
        self._session_failures[session] = count
        if count < self._max_auth_failures:
            return replies.AUTH_INVALID
        log.warning(AUTH_CLOSED, address, count)
        if server.transport is not None:
            # Runs after aiosmtpd has written the 421; close() sends what is buffered first.
            server.loop.call_soon(server.transport.close)
        return replies.AUTH_TOO_MANY_FAILURES

    async def _mail(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """handle_MAIL, installed only when the sender address can fault (rules or coded) or a
        blocklist refuses at MAIL FROM."""
        fault = self._fault("mail", (address,))
        if fault is not None and (reply := await self._apply(server, "mail", fault)) is not None:
            return reply
        listed = judge_mail(self._blocklist, self._enforcement, self._client_ip(session), address)
        if listed is not None:
            log.info(REFUSED_BY_RULE, _peer(session), "MAIL", listed.reply)
            self._refused("mail", (address,), listed)
            return listed.reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        fault = self._fault("rcpt", (address,))
        if fault is not None and (reply := await self._apply(server, "rcpt", fault)) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.OK

    def _unencoded(self, value: bytes, peer: str) -> bytes:
        """The scenario's choice for a meta carried as RFC 2047 encoded-words: decode or echo."""
        if not has_encoded_word(value):
            return value
        if self.scenario.callbacks.meta_encoded_words == "decode":
            decoded = decode_encoded_words(value)
            if decoded is not None:
                log.info(DECODED_META, peer, len(value), len(decoded))
                return decoded
            log.warning(UNDECODED_META, peer)
            return value
        log.warning(ENCODED_META, peer)
        return value

    def _mangled(self, meta: str, peer: str) -> str:
        """The meta as the scenario's (mis)behaving vendor echoes it; the key stays the original."""
        mode = self.scenario.callbacks.meta_mangling
        try:
            echoed = mangle(meta, mode)
        except MetaManglingError as exc:
            log.warning(UNMANGLEABLE_META, peer, exc, mode)
            return meta
        if echoed != meta:
            log.info(MANGLED_META, peer, mode, meta[:80], echoed[:80])
        return echoed

    def _client_ip(self, session: Session) -> str:
        """The IP verdicts and blocklist see: the scenario's `client_ip`, else the peer's."""
        if self._authentication is not None and self._authentication.client_ip:
            return self._authentication.client_ip
        return str(session.peer[0]) if session.peer else ""

    def _judge(
        self, server: SMTP, session: Session, envelope: Envelope, raw: bytes
    ) -> tuple[bytes, Verdicts | None, str | None, Judgement | None]:
        """The message as stored (with its Authentication-Results header when verified), the
        verdicts, the header's value, and the rule that decides its fate, if any."""
        client_ip = self._client_ip(session)
        mail_from = envelope.mail_from or ""
        facts = read_facts(raw)
        verdicts = results = None
        if self._authentication is not None:
            helo = self._authentication.helo or session.host_name or ""
            zone = self._authentication.zone
            verdicts = authenticate(raw, zone, client_ip, mail_from, helo, facts)
            results = header_value(server.hostname, verdicts)
            raw = stamp(raw, results)
        judgement = judge(verdicts, facts, self._blocklist, self._enforcement, client_ip, mail_from)
        return raw, verdicts, results, judgement

    def _record(
        self,
        session: Session,
        envelope: Envelope,
        raw: bytes,
        verdicts: Verdicts | None = None,
        results: str | None = None,
        judgement: Judgement | None = None,
    ) -> MessageRecord:
        peer = _peer(session)
        meta_bytes = extract_header(raw, unfolding=self.scenario.callbacks.meta_unfolding)
        as_arrived = raw_header(raw)
        meta: str | None = None
        if meta_bytes is None:
            log.info(NO_META, peer)
        else:
            meta_bytes = self._unencoded(meta_bytes, peer)
            try:
                meta = meta_bytes.decode("utf-8")
            except UnicodeDecodeError:
                log.warning(UNDECODABLE_META, peer)
                meta = meta_bytes.decode("utf-8", "replace")
        key = message_key(raw, meta_bytes)
        callbacks = self.scenario.callbacks
        # The spool's message record keeps the meta as received; only the events carry the echo.
        echoed = None if meta is None else self._mangled(meta, peer)
        events = []
        for recipient in envelope.rcpt_tos:
            decision = self.decider.decide(key, recipient)
            if decision.dropped:
                log.info(DROPPED_EVENT, recipient)
                continue
            if meta is None and callbacks.missing_meta == "drop":
                continue
            outcome, description, why = decision.outcome, decision.description, decision.why
            if judgement is not None:
                outcome, description = RULE_OUTCOMES[judgement.action], judgement.description
                why = WHY_JUDGED.format(rule=judgement.rule)
            if outcome == DELIVERED and not callbacks.report_delivered:
                continue
            events.append(
                EventRecord(
                    group=SUCCESS if outcome == DELIVERED else FAILED,
                    type=outcome,
                    email=recipient,
                    meta=echoed,
                    description=description,
                    mutation=decision.mutation,
                    extra_keys=decision.extra_keys,
                    duplicate_after=callbacks.duplicate_delay if decision.duplicate else None,
                    why=why,
                )
            )
        return MessageRecord(
            peer=peer,
            mail_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            meta=meta,
            message_key=key,
            size=len(raw),
            events=tuple(events),
            echo=echoed,
            raw_meta=None if as_arrived is None else as_arrived.decode("utf-8", "replace"),
            authentication_results=results,
            auth=None if verdicts is None else json.dumps(verdicts.as_dict()),
        )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._fault("data", tuple(envelope.rcpt_tos))
        if fault is not None and (reply := await self._apply(server, "data", fault)) is not None:
            return reply
        raw = envelope.original_content or b""
        spool_bytes = self.writer.size()
        if spool_bytes >= self._spool_quota:
            log.warning(REFUSED_SPOOL_FULL, session.peer, spool_bytes, self._spool_quota)
            return replies.SPOOL_FULL
        verdicts = results = judgement = None
        if self._judging:
            raw, verdicts, results, judgement = self._judge(server, session, envelope, raw)
            if judgement is not None and judgement.action == REFUSE:
                log.info(REFUSED_BY_RULE, _peer(session), "DATA", judgement.reply)
                self._refused("data", tuple(envelope.rcpt_tos), judgement)
                return judgement.reply
            if judgement is not None:
                log.info(JUDGED_BY_RULE, _peer(session), judgement.action, judgement.description)
        record = self._record(session, envelope, raw, verdicts, results, judgement)
        weight = callback_bytes(record)
        if weight > self._message_quota:
            log.warning(REFUSED_OVER_QUOTA, session.peer, weight, self._message_quota)
            return replies.OVER_MESSAGE_QUOTA.format(
                bytes=weight, events=len(record.events), quota=self._message_quota
            )
        try:
            message_id = await self.writer.submit(record)
        except SpoolDiskFull:
            log.error(REFUSED_DISK_FULL, session.peer)
            return replies.SPOOL_DISK_FULL
        except Exception:
            log.exception("spool write failed; the client is told to retry")
            return replies.SPOOL_FAILED
        return replies.QUEUED.format(id=message_id)
