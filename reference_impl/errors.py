"""The platform side's exception tree: each error raised on purpose derives from `PlatformError`.

The `bounceback` command catches `PlatformError` and prints `bounceback <command>: error: ...` on
stderr, exit 2 (operator and input errors); anything else is a bug and keeps its traceback. Each
class is defined next to the code that raises it; this module holds the root, the exit codes and
the map of the tree:

    PlatformError
    ├── MetaError                (protocol.meta: a meta that does not decode)
    ├── PayloadRejected          (protocol.payload: a body that is not a v2 callback)
    ├── LinkKeyError             (protocol.links: a preference-link key is malformed)
    ├── QueryError               (receiver.responses: a bad query parameter)
    ├── ServerError              (receiver.server: the receiver could not start or serve)
    ├── StoreError               (receiver.store: the store's file cannot be opened)
    ├── ProviderError            (sender.provider: a provider file or entry is wrong)
    ├── AudienceError            (sender.audience: the audience CSV cannot be read)
    ├── MessageError             (sender.message: a message cannot be built)
    ├── SessionError             (sender.session: a session cannot be set up, e.g. its ca_file)
    ├── DkimError                (sender.dkim: a DKIM key cannot be made, read or used)
    ├── ZoneError                (sender.deliverability.zone: a zone file is unreadable or wrong)
    ├── AuthResultsError         (sender.deliverability.authres: an Authentication-Results value)
    ├── EspProbeError            (sender.deliverability.esp: the probe or its verdicts via the ESP)
    ├── SendFailed               (sender.session: one recipient failed; carries the classification)
    ├── SessionUnavailable       (sender.session: the server could not be reached or opened)
    │   └── VendorUnreachable    (certify.smtp: not even the first probe could be sent)
    ├── CampaignError            (sender.campaign: a campaign cannot start)
    ├── SuppressionUnavailable   (sender.suppression: the receiver cannot say who unsubscribed)
    ├── SendSetupError           (sender.cli: an option or variable the provider needs is missing)
    ├── PlanError                (certify.plan: a certification plan is wrong)
    ├── ProbeMetaError           (certify.probes: a probe meta cannot be built)
    ├── ProbeProviderError       (certify.smtp: the plan's SMTP settings are unusable)
    ├── RecordingError           (certify.recording: a recording cannot be read)
    ├── LiveRunError             (certify.run: a live certification run could not proceed)
    └── CertifyInputError        (certify.cli: an option or recording does not fit the plan)
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_OPERATOR", "PlatformError"]

# Exit codes of every `bounceback` command, so CI can tell a verdict from a mistake.
EXIT_OK = 0
EXIT_FAILED = 1  # a verdict: a check, a campaign or a certification failed
EXIT_OPERATOR = 2  # a usage or operator error: bad option or file, port in use, host unreachable


class PlatformError(Exception):
    """Root of every error the platform side raises on purpose; its message says what to do."""
