"""A Hypothesis state machine that drives a receiver with callbacks and checks subscriptions.

The model is PROTOCOL.md section 5 alone: a profile is named by the meta's recipient (not the
event's `email`), starts subscribed, and `hard_bounce`, `spam`, `unsubscribed` and `bounce`
unsubscribe it for good; `soft_bounce`, `delivered`, refused events and retries change nothing.
After every step each touched profile is read back through the state API and compared.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from simulator.conformance import strategies as cs
from simulator.conformance.context import Context, fail_if
from simulator.protocol import expect as x
from simulator.protocol.difference import Difference

PROFILES_PER_RUN = 4


def subscription_machine(ctx: Context) -> type[RuleBasedStateMachine]:
    """A machine class bound to `ctx` (Hypothesis instantiates it once per run)."""

    class SubscriptionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            run = uuid.uuid4().hex[:8]
            self.profiles = [
                f"sm-{ctx.nonce}-{run}-{n}@example.com" for n in range(PROFILES_PER_RUN)
            ]
            self.subscribed = dict.fromkeys(self.profiles, True)
            self.touched: set[str] = set()
            self.sent: list[dict[str, Any]] = []
            self.last_exchange: Any = None
            self.step = 0

        def _event(self, kind: str, profile: int, other_email: bool) -> dict[str, Any]:
            self.step += 1
            meta_email = self.profiles[profile]
            email = f"other-{self.step}@example.net" if other_email else meta_email
            meta = cs.build_meta(meta_email, 1568798080, 1730714617 + self.step, 0, "sm", self.step)
            return {"type": kind, "email": email, "meta": meta, "description": f"step {self.step}"}

        def _apply(self, events: list[dict[str, Any]]) -> None:
            """Send `events`; the model says which are processed, and so change a profile."""
            self.last_exchange = ctx.client.post(cs.batch(events))
            ctx.on_example()
            for event in events:
                profile = event["meta"].split("|")[0] if "meta" in event else event["email"]
                self.touched.add(profile)
                if x.judge_event(event).outcome is not x.Outcome.PROCESSED:
                    continue
                if event["type"] in x.UNSUBSCRIBING:
                    self.subscribed[profile] = False
                self.sent.append(event)

        @rule(
            kind=st.sampled_from(x.FAILED_TYPES),
            profile=st.integers(0, PROFILES_PER_RUN - 1),
            other_email=st.booleans(),
        )
        def send_one(self, kind: str, profile: int, other_email: bool) -> None:
            self._apply([self._event(kind, profile, other_email)])

        @rule(
            kinds=st.lists(
                st.tuples(st.sampled_from(x.FAILED_TYPES), st.integers(0, PROFILES_PER_RUN - 1)),
                min_size=2,
                max_size=6,
            )
        )
        def send_batch(self, kinds: list[tuple[str, int]]) -> None:
            events = [self._event(kind, profile, False) for kind, profile in kinds]
            self._apply(events)

        @rule(profile=st.integers(0, PROFILES_PER_RUN - 1))
        def send_refused(self, profile: int) -> None:
            event = self._event("hard_bounce", profile, False)
            del event["meta"]  # the page refuses a missing meta; a malformed one is only a reading
            self._apply([event])

        @precondition(lambda self: self.sent)
        @rule(pick=st.integers(0, 10**6))
        def retry(self, pick: int) -> None:
            event = self.sent[pick % len(self.sent)]
            self._apply([event])

        @invariant()
        def profiles_match_model(self) -> None:
            if not self.touched:
                return
            state = ctx.state()
            rows = []
            for profile in sorted(self.touched):
                found = state.profile(profile)
                actual = True if found is None else found.get("subscribed")
                if actual is not self.subscribed[profile]:
                    rows.append(
                        Difference(
                            f"profile {profile}.subscribed", self.subscribed[profile], actual
                        )
                    )
            fail_if(ctx, "CB-5.6", "after a random sequence of callbacks", rows, self.last_exchange)

    return SubscriptionMachine


def run_subscription_machine(ctx: Context) -> None:
    run_state_machine_as_test(
        subscription_machine(ctx),
        settings=settings(ctx.property_settings(), stateful_step_count=15),
    )
