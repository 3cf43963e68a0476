"""`bounceback provider check --deliverability`: would a mailbox provider accept the mail?

`probe` builds one message as a campaign would, signed as the session signs it; `zone` reads the
DNS it is judged against (a scenario's `[authentication]` table, the one the fake ESP reads);
`checks` judges it, one pure function per check, each a PASS, WARN or FAIL with what to change.
With `--esp`, `esp` sends the probe through a running fake ESP and reads back its verdicts, an
RFC 8601 header value that `authres` parses.
"""

from reference_impl.sender.deliverability.authres import (
    AuthenticationResults,
    AuthResultsError,
    parse_authentication_results,
)
from reference_impl.sender.deliverability.checks import (
    CHECKS,
    FAIL,
    PASS,
    VERDICTS,
    WARN,
    Finding,
    check_message,
    worst,
)
from reference_impl.sender.deliverability.esp import EspProbeError
from reference_impl.sender.deliverability.probe import Probe, build_probe
from reference_impl.sender.deliverability.zone import Zone, ZoneError, load_zone, parse_zone

__all__ = [
    "CHECKS",
    "FAIL",
    "PASS",
    "VERDICTS",
    "WARN",
    "AuthResultsError",
    "AuthenticationResults",
    "EspProbeError",
    "Finding",
    "Probe",
    "Zone",
    "ZoneError",
    "build_probe",
    "check_message",
    "load_zone",
    "parse_authentication_results",
    "parse_zone",
    "worst",
]
