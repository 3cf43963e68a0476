"""ESP vendor certification: send probes through a vendor's SMTP, record its callbacks, grade them.

`plan` loads the TOML plan, `probes` gives each probe its meta, `smtp` sends them with the
sender's session, `recording` holds the capture format and the recording receiver, `checks` grades
a capture (a pure function), each check naming its source (`provenance`), `report` writes HTML,
JSON and JUnit XML, `run` drives a live run and `cli` is the `bounceback certify` command.
"""

from reference_impl.certify.checks import (
    CHECKS,
    MUST,
    SHOULD,
    Certification,
    CheckDef,
    CheckResult,
    Evidence,
    grade,
)
from reference_impl.certify.plan import Plan, PlanError, ProbeSpec, load_plan, parse_plan
from reference_impl.certify.probes import ProbeMetaError
from reference_impl.certify.provenance import Provenance
from reference_impl.certify.recording import Recording, RecordingError, SentProbe, read_recording
from reference_impl.certify.report import write_report
from reference_impl.certify.run import LiveRunError, live_run
from reference_impl.certify.smtp import ProbeProviderError, VendorUnreachable

__all__ = [
    "CHECKS",
    "MUST",
    "SHOULD",
    "Certification",
    "CheckDef",
    "CheckResult",
    "Evidence",
    "LiveRunError",
    "Plan",
    "PlanError",
    "ProbeMetaError",
    "ProbeProviderError",
    "ProbeSpec",
    "Provenance",
    "Recording",
    "RecordingError",
    "SentProbe",
    "VendorUnreachable",
    "grade",
    "live_run",
    "load_plan",
    "parse_plan",
    "read_recording",
    "write_report",
]
