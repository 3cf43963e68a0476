"""Every SMTP reply the fake ESP gives, or quotes, by name: one table, in the manner of aiosmtpd's
`testing/statuscodes.py`.

Four groups: what the session answers on its own (the handler), what an injected fault answers
when the scenario or a coded address gives only a code (`faults.py`), the remote servers'
replies the ESP quotes in a bounce's callback description (`outcomes.py`), and what the
bulk-sender rules and the blocklist answer or report (`auth/rules.py`), each naming its rule.
Texts follow RFC 5321 codes with RFC 3463 enhanced status codes. Tests import these names
instead of repeating the strings, so changing a text is one edit. Replies aiosmtpd writes itself
(greeting, 503 sequence errors, 530 STARTTLS required, ...) are its own and not repeated here.
"""

from __future__ import annotations

__all__ = [
    "AUTH_INVALID",
    "AUTH_TEMPORARY_FAILURE",
    "AUTH_TOO_MANY_FAILURES",
    "BAD_CONNECTION",
    "BAD_DESTINATION_SYSTEM",
    "BAD_MAILBOX_SYNTAX",
    "BY_CODE",
    "CONNECT_REFUSED",
    "DELIVERED_REPLIES",
    "DELIVERED_TO_MAILBOX",
    "DMARC_NOT_PASSED",
    "FAULT_TEXT",
    "HARD_BOUNCE_REPLIES",
    "HELO",
    "LISTED_CODE",
    "LISTED_DOMAIN",
    "LISTED_IP",
    "LOCAL_ERROR",
    "MAILBOX_DISABLED",
    "MAILBOX_FULL",
    "MAILBOX_UNAVAILABLE",
    "MESSAGE_TOO_BIG",
    "NOT_AUTHORIZED",
    "NO_ANSWER_FROM_HOST",
    "NO_HTTPS_UNSUBSCRIBE",
    "NO_LIST_UNSUBSCRIBE",
    "NO_ONE_CLICK",
    "NO_ONE_CLICK_POST",
    "NULL_MX",
    "OK",
    "ONE_CLICK_CODE",
    "OVER_MESSAGE_QUOTA",
    "PIPELINING",
    "QUEUED",
    "SERVICE_NOT_AVAILABLE",
    "SOFT_BOUNCE_REPLIES",
    "SPAM_FOLDER",
    "SPOOL_DISK_FULL",
    "SPOOL_FAILED",
    "SPOOL_FULL",
    "STALL_TIMEOUT",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_RECIPIENTS",
    "TRANSACTION_FAILED",
    "UNAUTHENTICATED",
    "UNAUTHENTICATED_CODE",
    "UNDEFINED_STATUS",
    "USER_NOT_LOCAL",
    "USER_UNKNOWN",
]

# --- The session (handler.py) ---------------------------------------------------------------
OK = "250 2.0.0 OK"
QUEUED = "250 2.0.0 OK: queued as {id}"
"""DATA accepted: only after the message and its events are committed to the spool."""
HELO = "250 {hostname}"
PIPELINING = "250-PIPELINING"
"""The EHLO line offering RFC 2920 pipelining (aiosmtpd serves it, but does not list it)."""
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
SPOOL_FAILED = "451 4.3.0 Spool unavailable, try again later"
AUTH_TOO_MANY_FAILURES = "421 4.7.0 Too many failed AUTH attempts, closing connection"
"""After `max_auth_failures` on one connection: the connection is closed after it."""
SPOOL_DISK_FULL = "452 4.3.1 Insufficient system storage: the spool's disk is full, try again later"
"""DATA when committing the message to the spool met a full disk (SQLITE_FULL): the platform
keeps the message and retries, as for a spool over its quota."""
SPOOL_FULL = "452 4.3.1 Insufficient system storage: spool quota reached, try again later"
OVER_MESSAGE_QUOTA = (
    "552 5.3.4 Message exceeds quota: its callbacks would be {bytes} bytes"
    " ({events} events x meta), over {quota}"
)
"""A message whose echoed meta times its recipients exceeds the per-message callback quota."""

# --- Injected faults (faults.py) --------------------------------------------------------------
SERVICE_NOT_AVAILABLE = "421 4.3.2 Service not available, closing transmission channel"
MAILBOX_UNAVAILABLE = "450 4.2.1 Mailbox temporarily unavailable"
LOCAL_ERROR = "451 4.3.0 Requested action aborted: local error in processing"
MAILBOX_FULL = "452 4.2.2 Mailbox full"
AUTH_TEMPORARY_FAILURE = "454 4.7.0 Temporary authentication failure"
USER_UNKNOWN = "550 5.1.1 User unknown"
USER_NOT_LOCAL = "551 5.1.6 User not local"
MESSAGE_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
BAD_MAILBOX_SYNTAX = "553 5.1.3 Bad destination mailbox address syntax"
TRANSACTION_FAILED = "554 5.6.0 Transaction failed"
CONNECT_REFUSED = "554 5.3.2 No SMTP service here"
"""The greeting of a `connect` fault that gives no reply of its own."""
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
"""The greeting while `smtp.max_connections` sessions are open; the connection is then closed."""
STALL_TIMEOUT = "451 4.4.2 Timeout waiting for data"
FAULT_TEXT = "Fault injected by the fake ESP"
"""The text after a code that `BY_CODE` does not know (`rcpt299@`)."""
BY_CODE = {
    reply.split(" ", 1)[0]: reply
    for reply in (
        SERVICE_NOT_AVAILABLE,
        MAILBOX_UNAVAILABLE,
        LOCAL_ERROR,
        MAILBOX_FULL,
        AUTH_TEMPORARY_FAILURE,
        AUTH_INVALID,
        USER_UNKNOWN,
        USER_NOT_LOCAL,
        MESSAGE_TOO_BIG,
        BAD_MAILBOX_SYNTAX,
        TRANSACTION_FAILED,
    )
}
"""The reply for a coded address that gives only a code (`rcpt550@`, `data451@`)."""

# --- Remote replies quoted in callback descriptions (outcomes.py) ------------------------------
BAD_DESTINATION_SYSTEM = "550 5.1.2 Bad destination system address"
NULL_MX = "550 5.1.10 Recipient address has null MX"
NOT_AUTHORIZED = "550 5.7.1 Delivery not authorized, message refused"
MAILBOX_DISABLED = "450 4.2.1 Mailbox disabled, not accepting messages"
UNDEFINED_STATUS = "451 4.3.0 Other or undefined mail system status"
BAD_CONNECTION = "421 4.4.2 Bad connection"
NO_ANSWER_FROM_HOST = "451 4.4.1 No answer from host"
DELIVERED_TO_MAILBOX = "250 2.0.0 OK: delivered to the recipient's mailbox"
HARD_BOUNCE_REPLIES = (
    USER_UNKNOWN,
    BAD_DESTINATION_SYSTEM,
    BAD_MAILBOX_SYNTAX,
    NULL_MX,
    NOT_AUTHORIZED,
)
"""The first is the canonical one, used by the SES-style address rules."""
SOFT_BOUNCE_REPLIES = (
    MAILBOX_FULL,
    MAILBOX_DISABLED,
    UNDEFINED_STATUS,
    BAD_CONNECTION,
    NO_ANSWER_FROM_HOST,
)
"""The first is the canonical one, used by the SES-style address rules."""
DELIVERED_REPLIES = (DELIVERED_TO_MAILBOX,)

# --- Bulk-sender rules and the blocklist (auth/rules.py) ----------------------------------------
# A refusal is `<code> <text>`; a bounce callback's description is the same line, and a spam
# callback's is SPAM_FOLDER around the text. Every text ends naming the rule that fired.
UNAUTHENTICATED_CODE = "550 5.7.26"
"""Gmail's code for mail that fails its sender-authentication requirements."""
ONE_CLICK_CODE = "550 5.7.1"
LISTED_CODE = "554 5.7.1"
UNAUTHENTICATED = (
    "This mail has been blocked because the sender is unauthenticated: it passed neither SPF"
    " nor DKIM (bulk-sender rule {rule})"
)
DMARC_NOT_PASSED = (
    "Unauthenticated email from {domain} is not accepted due to the domain's DMARC policy:"
    " dmarc={result}, {reason} (bulk-sender rule {rule})"
)
NO_ONE_CLICK = (
    "Bulk mail must offer one-click unsubscribe (RFC 8058): {problem} (bulk-sender rule {rule})"
)
NO_LIST_UNSUBSCRIBE = "no List-Unsubscribe header"
NO_HTTPS_UNSUBSCRIBE = "List-Unsubscribe has no https URI"
NO_ONE_CLICK_POST = "no List-Unsubscribe-Post: List-Unsubscribe=One-Click"
LISTED_IP = (
    "Service unavailable; client host [{ip}] is on the blocklist (listed: {listing}; {rule})"
)
LISTED_DOMAIN = (
    "Message refused: the {where} domain {domain} is on the blocklist (listed: {listing}; {rule})"
)
SPAM_FOLDER = "Delivered to the spam folder: {reason}"
