"""One seed for a whole run of Hypothesis-driven checks, outside pytest.

`bounceback conform --seed N` and `bounceback fuzz --seed N` draw the same examples again (given a
receiver that answers the same way). Without `--seed` a run picks one and prints it. Hypothesis's
own pytest plugin forces a seed through `hypothesis.core.global_force_seed` (`--hypothesis-seed`);
the commands do the same, since the checks build their `@given` functions inside each call.
A forced seed only counts when `derandomize` is off, so the commands' settings turn it off.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

SEED_BITS = 32


def pick_seed() -> int:
    """A fresh seed, small enough to type back in."""
    return secrets.randbits(SEED_BITS)


def round_seed(seed: int, requirement_id: str, number: int) -> int:
    """The seed of one fuzz round: fixed by the run's seed, different for every round."""
    digest = hashlib.sha256(f"{seed}:{requirement_id}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@contextmanager
def forced_seed(seed: int) -> Iterator[None]:
    """Every `@given` run inside draws from `seed`."""
    from hypothesis import core

    before = core.global_force_seed
    core.global_force_seed = seed
    try:
        yield
    finally:
        core.global_force_seed = before
