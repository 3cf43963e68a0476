"""The sending side: provider settings, campaigns stamped with X-CleverTap_META, the demo.

`provider` reads and checks provider files; `message` builds one message (pure); `session` is one
SMTP session running each mail `transaction` (pure; pipelined where the server offers it), every
failure classified by `errors` into a PROTOCOL.md section 6 error, whose
final bytes `dkim` signs when the provider names a key (`dkim` also makes key pairs); `campaign`
is the pool of sessions sending to an audience (`audience` reads it from CSV), skipping the
profiles `suppression` says the receiver has unsubscribed; `demo` runs the
whole loop on one machine; `cli` holds the commands.
"""

from reference_impl.sender.attribution import Attribution, check_attribution
from reference_impl.sender.audience import AudienceError, read_audience
from reference_impl.sender.campaign import (
    Campaign,
    CampaignError,
    CampaignReport,
    Result,
    Suppressed,
)
from reference_impl.sender.demo import DemoSummary, run_demo
from reference_impl.sender.dkim import DkimError, generate_key, sign_message
from reference_impl.sender.errors import (
    CONNECTION_ERROR,
    DISPATCHING_FAILED,
    INVALID_EMAIL,
    TIMEOUT,
    Failure,
    classify,
)
from reference_impl.sender.message import Content, MessageError, build_message, build_test_email
from reference_impl.sender.provider import (
    Provider,
    ProviderError,
    load_providers,
    parse_providers,
    select_provider,
)
from reference_impl.sender.session import (
    SendFailed,
    SessionError,
    SessionUnavailable,
    SmtpSession,
    open_session,
)
from reference_impl.sender.suppression import (
    ReceiverSuppression,
    StoreSuppression,
    Suppression,
    SuppressionUnavailable,
)

__all__ = [
    "CONNECTION_ERROR",
    "DISPATCHING_FAILED",
    "INVALID_EMAIL",
    "TIMEOUT",
    "Attribution",
    "AudienceError",
    "Campaign",
    "CampaignError",
    "CampaignReport",
    "Content",
    "DemoSummary",
    "DkimError",
    "Failure",
    "MessageError",
    "Provider",
    "ProviderError",
    "ReceiverSuppression",
    "Result",
    "SendFailed",
    "SessionError",
    "SessionUnavailable",
    "SmtpSession",
    "StoreSuppression",
    "Suppressed",
    "Suppression",
    "SuppressionUnavailable",
    "build_message",
    "build_test_email",
    "check_attribution",
    "classify",
    "generate_key",
    "load_providers",
    "open_session",
    "parse_providers",
    "read_audience",
    "run_demo",
    "select_provider",
    "sign_message",
]
