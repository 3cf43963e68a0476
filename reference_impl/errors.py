"""The platform side's exception tree: each error raised on purpose derives from `PlatformError`.

The CLI catches `PlatformError` and prints its message on one line (exit 2 for operator and input
errors); anything else is a bug and keeps its traceback. Each class is defined next to the code that
raises it; this module holds the root and the map of the tree:

    PlatformError
    ├── MetaError                (protocol.meta: a meta that does not decode)
    ├── PayloadRejected          (protocol.payload: a body that is not a v2 callback)
    ├── QueryError               (receiver.app: a bad query parameter)
    ├── ServerError              (receiver.server: the receiver could not start or serve)
    ├── ProviderError            (sender.provider: a provider file or entry is wrong)
    ├── MessageError             (sender.message: a message cannot be built)
    ├── CampaignError            (sender.campaign: a campaign cannot run)
    ├── SendFailed               (sender.campaign: one recipient failed; carries the classification)
    ├── PlanError                (certify.plan: a certification plan is wrong)
    ├── ProbeMetaError           (certify.probes: a probe meta cannot be built)
    ├── ProbeProviderError       (certify.smtp: the plan's SMTP settings are unusable)
    ├── RecordingError           (certify.recording: a recording cannot be read)
    └── LiveRunError             (certify.run: a live certification run could not proceed)
"""

from __future__ import annotations

__all__ = ["PlatformError"]


class PlatformError(Exception):
    """Root of every error the platform side raises on purpose; its message says what to do."""
