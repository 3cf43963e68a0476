"""SMTP-stage fault injection: which fault, if any, answers a stage. Pure.

Two ways to trigger a fault, as users of test mail servers ask for both:
- by rate, like Mailpit's chaos and MailHog's Jim: a scenario `[[smtp.faults]]` with `rate`;
- by address, like BadSMTP: a scenario fault with `match`, or an address whose local part names
  the stage and the reply, e.g. `rcpt550_5.1.1@`, `data451@`, `mail452@`, `rcptstall@`,
  `datadrop@` (on unless the scenario sets `smtp.address_faults = false`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from simulator.esp import replies
from simulator.esp.outcomes import address_matches
from simulator.esp.scenario import STAGES, FaultRule

DEFAULT_STALL_SECONDS = 120.0
WHY_CODED = "coded address {address}"
WHY_MATCHED = "scenario fault matching {match!r}"
WHY_RATED = "scenario fault at rate {rate:g}"
CODED_STAGES = ("mail", "rcpt", "data")
CODED_ADDRESS = re.compile(
    r"(?P<stage>mail|rcpt|data)(?:(?P<code>[2-5][0-9]{2})(?:_(?P<status>[245]\.[0-9]{1,3}\.[0-9]{1,3}))?"
    r"|(?P<action>stall|drop))"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """The fault to apply at one stage: reply with `reply`, drop, stall, or delay then go on."""

    action: str
    reply: str | None = None
    seconds: float = 0.0
    why: str = ""
    """What triggered it (a coded address, a scenario rule, a runtime rate): the dashboard's."""


def reply_for(code: str, status: str | None = None) -> str:
    """`550`, `5.1.1` -> `550 5.1.1 User unknown`; unknown codes get a generic text."""
    known = replies.BY_CODE.get(code)
    if status is None:
        return known or f"{code} {replies.FAULT_TEXT}"
    text = known.split(" ", 2)[2] if known else replies.FAULT_TEXT
    return f"{code} {status} {text}"


def coded_fault(stage: str, address: str) -> Fault | None:
    """BadSMTP-style fault named by the address's local part (label and domain ignored).

    Called for every address of every message: an address not starting with the stage's name
    (nearly all of them) is turned away by a prefix test before any splitting or regex.
    """
    lowered = address.lower()
    if not lowered.startswith(stage):
        return None
    local = lowered.rpartition("@")[0].split("+", 1)[0]
    found = CODED_ADDRESS.fullmatch(local)
    if found is None or found["stage"] != stage:
        return None
    why = WHY_CODED.format(address=address)
    if found["action"] == "stall":
        return Fault("stall", replies.STALL_TIMEOUT, DEFAULT_STALL_SECONDS, why)
    if found["action"] == "drop":
        return Fault("drop", why=why)
    return Fault("reply", reply_for(found["code"], found["status"]), why=why)


def _from_rule(rule: FaultRule) -> Fault:
    reply = rule.reply
    if reply is None and rule.action == "stall":
        reply = replies.STALL_TIMEOUT
    if rule.match is not None:
        why = WHY_MATCHED.format(match=rule.match)
    else:
        why = WHY_RATED.format(rate=rule.rate)
    return Fault(rule.action, reply, rule.seconds, why)


@dataclass(frozen=True, slots=True)
class StageFaults:
    """Everything that can fault one SMTP stage, sorted out of the scenario once at start.

    The handler asks this once per command instead of scanning every rule of every stage, and
    installs no hook at all for a stage that cannot fault (`stage_faults` leaves it out).
    """

    stage: str
    coded: bool = False
    matched: tuple[FaultRule, ...] = ()
    rated: tuple[FaultRule, ...] = ()

    @classmethod
    def of(cls, rules: tuple[FaultRule, ...], stage: str, coded: bool = True) -> StageFaults:
        """The faults of `stage` among `rules`; coded addresses exist only for MAIL, RCPT, DATA."""
        mine = [rule for rule in rules if rule.stage == stage]
        return cls(
            stage=stage,
            coded=coded and stage in CODED_STAGES,
            matched=tuple(rule for rule in mine if rule.match is not None),
            rated=tuple(rule for rule in mine if rule.match is None and rule.rate > 0),
        )

    @property
    def empty(self) -> bool:
        return not (self.coded or self.matched or self.rated)

    def pick(
        self, addresses: tuple[str, ...] = (), rng: random.Random | None = None
    ) -> Fault | None:
        """The first fault that applies: coded addresses, then matches, then rates.

        `rng` is drawn from once per rate rule, so a seeded stream stays reproducible.
        """
        if self.coded:
            for address in addresses:
                fault = coded_fault(self.stage, address)
                if fault is not None:
                    return fault
        for rule in self.matched:
            assert rule.match is not None
            if any(address_matches(rule.match, address) for address in addresses):
                return _from_rule(rule)
        if rng is not None:
            for rule in self.rated:
                if rng.random() < rule.rate:
                    return _from_rule(rule)
        return None


def stage_faults(rules: tuple[FaultRule, ...], coded: bool) -> dict[str, StageFaults]:
    """The stages that can fault under these rules (and coded addresses, if on), by name.

    A stage missing here never faults, so the handler leaves aiosmtpd's default for it.
    """
    stages = (StageFaults.of(rules, stage, coded) for stage in STAGES)
    return {faults.stage: faults for faults in stages if not faults.empty}
