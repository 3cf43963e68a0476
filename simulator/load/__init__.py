"""Distributed load with Locust: v2 callbacks against a receiver, SMTP sessions against an ESP.

`bounceback load callbacks URL` and `bounceback load smtp HOST:PORT` run the user classes in
`users` under Locust (its own options passed through, so `--master`/`--worker`, the web UI and the
CSV/HTML reports work as Locust documents). Every user records what the target acknowledged in a
ledger; `bounceback load verify` then proves, through the receiver's read API, that nothing
acknowledged was lost and no retried event raised its system events twice.
"""

from simulator.load.batches import BatchFactory, Built
from simulator.load.ledger import Acknowledged, LedgerError, acknowledged_events, read_ledgers
from simulator.load.verify import ReadAPIError, Verdict, difference

__all__ = [
    "Acknowledged",
    "BatchFactory",
    "Built",
    "LedgerError",
    "ReadAPIError",
    "Verdict",
    "acknowledged_events",
    "difference",
    "read_ledgers",
]
