"""Decide, per recipient, what the fake ESP reports: pure and reproducible.

Every decision draws from uniform numbers cut from a hash of (seed, message key, recipient), so
the same scenario, seed and mail give the same callbacks whatever the arrival order or the
concurrency of the SMTP sessions.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import struct
from dataclasses import dataclass

from faker import Faker

from simulator.esp import replies
from simulator.esp.scenario import DELIVERED, OUTCOMES, AddressRule, Scenario

# What each outcome's description says: bounces and deliveries quote a remote server's reply
# (named in replies.py), complaints and unsubscribes the report they come from. The first entry of
# each list is the canonical one used by the SES-style address rules.
SPAM_TEXTS = ("Complaint received: feedback-type=abuse (RFC 5965 ARF report)",)
UNSUBSCRIBED_TEXTS = ("Recipient unsubscribed via List-Unsubscribe (RFC 8058 one-click)",)
TEXTS = {
    "delivered": replies.DELIVERED_REPLIES,
    "hard_bounce": replies.HARD_BOUNCE_REPLIES,
    "soft_bounce": replies.SOFT_BOUNCE_REPLIES,
    "spam": SPAM_TEXTS,
    "unsubscribed": UNSUBSCRIBED_TEXTS,
}


FAKER_POOL = 512
# The drop draw has its own hash (an extra part), so adding it left every other decision as it was.
DROP_PART = "drop"
DRAWS_PER_DECISION = 6
WHY_RULE = "address rule {match!r}"
WHY_RATE = "outcome rates"
"""Why an outcome was chosen, stored with each event and shown by the dashboard."""
_UNIT = 2.0**-64


@dataclass(slots=True)
class Decision:
    """What happens to one recipient of one message, and how its callback event is bent.

    Not frozen, unlike the scenario's types: one is made per recipient on the SMTP event loop,
    and a frozen dataclass's per-field object.__setattr__ made that about three times as costly.
    Nothing changes a decision after `decide` returns it.
    """

    outcome: str
    description: str
    mutation: str | None = None
    extra_keys: bool = False
    duplicate: bool = False
    dropped: bool = False
    why: str = WHY_RATE


def strip_label(address: str) -> str:
    """`Bounce+anything@Example.com` -> `bounce@example.com`: SES ignores the `+label`."""
    local, at, domain = address.lower().rpartition("@")
    if not at:
        local, domain = address.lower(), ""
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if at else local


def address_matches(pattern: str, address: str) -> bool:
    """`bounce@` matches that local part at any domain; anything else is an fnmatch glob."""
    plain = strip_label(address)
    if pattern.endswith("@"):
        return plain.split("@", 1)[0] + "@" == pattern
    return fnmatch.fnmatchcase(plain, pattern)


def rule_for(rules: tuple[AddressRule, ...], address: str) -> AddressRule | None:
    for rule in rules:
        if address_matches(rule.match, address):
            return rule
    return None


def rng_for(seed: int, *parts: str) -> random.Random:
    """An independent random stream for one (seed, parts...) tuple."""
    material = "\x00".join((str(seed), *parts)).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(material, digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def draws(seed: int, *parts: str, count: int = DRAWS_PER_DECISION) -> list[float]:
    """`count` uniform numbers in [0, 1) fixed by (seed, parts...): one hash, no generator.

    Each number is a big-endian 64-bit slice of the digest over 2**64; scaling by the exact
    power of two gives the same floats as dividing, for a fraction of the cost per recipient.
    """
    material = "\x00".join((str(seed), *parts)).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(material, digest_size=8 * count).digest()
    return [value * _UNIT for value in struct.unpack(f">{count}Q", digest)]


def _pick(rates: dict[str, float], draw: float, order: tuple[str, ...]) -> str | None:
    total = 0.0
    for name in order:
        total += rates.get(name, 0.0)
        if draw < total:
            return name
    return None


class Decider:
    """Holds the scenario, the seed and a Faker-made pool; `decide` is a pure function of its
    inputs (the pool itself is fixed by the seed)."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = seed
        faker = Faker("en_US")
        faker.seed_instance(seed)
        # Seeding Faker per event costs ~0.4 ms; a seeded pool keeps the SMTP path fast.
        self._hosts = tuple(f"mx.{faker.domain_name()}" for _ in range(FAKER_POOL))
        self._mutation_order = tuple(sorted(scenario.callbacks.mutations))

    def _description(
        self, outcome: str, base: str | None, text_draw: float, host_draw: float
    ) -> str:
        texts = TEXTS[outcome]
        text = base or texts[int(text_draw * len(texts))]
        if outcome == DELIVERED:
            return text
        return f"{text} (reported by {self._hosts[int(host_draw * len(self._hosts))]})"

    def decide(self, key: str, recipient: str) -> Decision:
        outcome_draw, mutation_draw, extra_draw, duplicate_draw, text_draw, host_draw = draws(
            self.seed, key, recipient
        )
        rule = rule_for(self.scenario.rules, recipient)
        callbacks = self.scenario.callbacks
        drop_rate = callbacks.drop_rate
        if rule is not None:
            outcome, base = rule.outcome, rule.description
            why = WHY_RULE.format(match=rule.match)
            if rule.drop_rate is not None:
                drop_rate = rule.drop_rate
        else:
            outcome = _pick(self.scenario.outcomes, outcome_draw, OUTCOMES) or DELIVERED
            base, why = None, WHY_RATE
        mutation = _pick(callbacks.mutations, mutation_draw, self._mutation_order)
        return Decision(
            outcome=outcome,
            description=self._description(outcome, base, text_draw, host_draw),
            mutation=mutation,
            extra_keys=extra_draw < callbacks.extra_keys_rate,
            duplicate=duplicate_draw < callbacks.duplicate_rate,
            dropped=drop_rate > 0 and self.drop_draw(key, recipient) < drop_rate,
            why=why,
        )

    def drop_draw(self, key: str, recipient: str) -> float:
        """The uniform number the drop decision compares with the drop rate."""
        return draws(self.seed, key, recipient, DROP_PART, count=1)[0]
