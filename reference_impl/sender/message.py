"""Building one campaign message with its `X-CleverTap_META` header. Pure, no sockets.

The meta must reach the ESP byte-exact. Python 3.11.7's `policy.SMTP` folds a header past 78
characters, and a folded meta parses back with a leading space (cpython gh-124452); a value with
no whitespace to fold at is written as RFC 2047 encoded-words instead. So the generator's line
limit is raised to RFC 5322's 998, and a header that would not fit one line is refused here
(`MessageError`) instead of being silently changed on the wire. Addresses are capped at 254
characters and labels at `MAX_LABEL`, so a real meta always fits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid
from urllib.parse import quote

from reference_impl.errors import PlatformError
from reference_impl.protocol.links import SIGNATURE_PARAM, sign_meta
from reference_impl.protocol.meta import HEADER_NAME, Meta
from reference_impl.sender.address import is_plain
from reference_impl.sender.provider import Provider

__all__ = [
    "LIST_UNSUBSCRIBE",
    "LIST_UNSUBSCRIBE_POST",
    "MAX_LABEL",
    "MAX_LINE",
    "ONE_CLICK",
    "PREFERENCES_PATH",
    "TEST_LABEL",
    "Content",
    "MessageError",
    "Template",
    "build_message",
    "build_test_email",
    "to_bytes",
]

MAX_LINE = 998
POLICY = SMTP.clone(max_line_length=MAX_LINE)
MAX_LABEL = 100
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"
# The receiver's own preference page, for preference_center = "clevertap".
PREFERENCES_PATH = "/preferences"
DEFAULT_SUBJECT = "A bounceback campaign"
BODY = (
    "Hello,\n\nthis message was sent by bounceback to test the v2 SMTP callback loop.\n"
    "Campaign label {label}, variant {variant}.\n"
)
TEST_SUBJECT = "bounceback test email from provider {nickname}"
TEST_BODY = (
    "This is the test email of provider {nickname}, sent by `bounceback provider test-email`.\n"
    "If you can read it, its SMTP settings work. Label {label}, variant {variant}.\n"
)

TEST_LABEL = "test_email"
PREFERENCES_LINE = "\nManage your email preferences or unsubscribe: {url}\n"


class MessageError(PlatformError, ValueError):
    """A message cannot be built so that its headers reach the ESP unchanged."""


@dataclass(frozen=True, slots=True)
class Content:
    subject: str = DEFAULT_SUBJECT
    body: str = BODY


# What `quote(text, safe="")` makes of each ASCII character, for `str.translate`.
_QUOTED_ASCII = {
    code: chr(code) if chr(code).isalnum() or chr(code) in "_.-~" else f"%{code:02X}"
    for code in range(128)
}


def _quote(text: str) -> str:
    """`urllib.parse.quote(text, safe="")`, at C speed for ASCII: it was a third of the CPU a
    message cost, the meta being quoted on every message (tests/.../test_message.py checks the
    two agree)."""
    return text.translate(_QUOTED_ASCII) if text.isascii() else quote(text, safe="")


def _preference_url(
    provider: Provider, meta: Meta, meta_text: str, receiver_url: str | None, signed: bool
) -> str:
    """The preference-center URL for one message (RFC 8058 needs it to identify the recipient).

    With the receiver's link key (and `signed`), the receiver's page gets `sig`, an HMAC of the
    exact meta text, so a link unsubscribes only the recipient it was sent to (PROTOCOL.md
    section 5); a custom page gets it only where its URL asks for `{sig}`.
    """
    key = provider.link_key if signed else None
    sig = sign_meta(meta_text, key) if key is not None else ""
    if provider.preference_center == "clevertap":
        if not receiver_url:
            raise MessageError(
                "preference_center = 'clevertap' needs the receiver's URL (its preference page)"
            )
        url = f"{receiver_url.rstrip('/')}{PREFERENCES_PATH}?meta={_quote(meta_text)}"
        return f"{url}&{SIGNATURE_PARAM}={_quote(sig)}" if sig else url
    url = provider.preference_center_url or ""
    values = {
        "email": _quote(meta.email),
        "meta": _quote(meta_text),
        "message_id": str(meta.message_id),
        "sig": _quote(sig),
    }
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    return url


def build_message(
    provider: Provider,
    meta: Meta,
    *,
    receiver_url: str | None = None,
    content: Content = Content(),
    sent_at: float | None = None,
    signed: bool = True,
) -> EmailMessage:
    """The message to `meta.email`, stamped with `meta` and the provider's preference center.

    The preference link is in `List-Unsubscribe` and at the end of the body; it is signed when the
    provider has a link key, unless `signed` is False (a test email's link must not work).
    """
    meta_text = meta.encode()
    message = EmailMessage(policy=POLICY)
    message["From"] = formataddr((provider.from_name, provider.from_address))
    message["To"] = meta.email
    message["Reply-To"] = provider.reply_to
    message["Subject"] = content.subject
    message["Date"] = formatdate(meta.sent_at if sent_at is None else sent_at, usegmt=True)
    message["Message-ID"] = make_msgid(f"bb{meta.message_id}", provider.from_address.split("@")[1])
    _set_unfolded(message, HEADER_NAME, meta_text)
    body = content.body.replace("{label}", meta.label).replace("{variant}", str(meta.variant))
    if provider.preference_center != "none":
        url = _preference_url(provider, meta, meta_text, receiver_url, signed)
        _set_unfolded(message, LIST_UNSUBSCRIBE, f"<{url}>")
        message[LIST_UNSUBSCRIBE_POST] = ONE_CLICK
        body += PREFERENCES_LINE.format(url=url)
    message.set_content(body)
    return message


def build_test_email(
    provider: Provider, meta: Meta, *, receiver_url: str | None = None
) -> EmailMessage:
    """ "Send a test email": one real message, with a meta so an ESP's echo can be checked too.

    Its preference link is written like a campaign's, but the page says the unsubscribe link of a
    test email does not work: the link is never signed, so the receiver changes nothing for it.
    """
    return build_message(
        provider,
        meta,
        receiver_url=receiver_url,
        signed=False,
        content=Content(
            TEST_SUBJECT.replace("{nickname}", provider.nickname),
            TEST_BODY.replace("{nickname}", provider.nickname),
        ),
    )


def _check_unfolded(name: str, value: str) -> None:
    line = len(name) + 2 + len(value)
    if line > MAX_LINE:
        raise MessageError(
            f"header {name} would be {line} characters, over the {MAX_LINE}-character line"
            " limit; it cannot travel unfolded and byte-exact (shorten the label)"
        )


def _set_unfolded(message: EmailMessage, name: str, value: str) -> None:
    _check_unfolded(name, value)
    message[name] = value


def to_bytes(message: EmailMessage) -> bytes:
    """The wire form, CRLF line ends, with the raised line limit."""
    return message.as_bytes(policy=POLICY)


# Values the stdlib writes out exactly as given: a plain address (`address.is_plain`), and visible
# ASCII with no encoded-word opener (`=?`, which a parser would decode). Anything else is built
# per message by the stdlib, so the fast path never writes what `build_message` would not.
_LITERAL_VALUE = re.compile(r"[\x21-\x7e]+")
_SLOT_EMAIL = "bbslot@bbslot.invalid"
# The headers written per recipient; every other line comes from the campaign's stdlib build.
_PER_MESSAGE = ("to", "date", "message-id", HEADER_NAME.lower(), LIST_UNSUBSCRIBE.lower())


def _literal(value: str) -> bool:
    return _LITERAL_VALUE.fullmatch(value) is not None and "=?" not in value


class Template:
    """A campaign's message built once by the stdlib, each recipient's headers written into it.

    Building and serialising an `EmailMessage` per recipient was most of the sender's CPU. Every
    line but To, Date, Message-ID, the meta and `List-Unsubscribe` (and the body's preference
    link) is the same for the whole campaign, so it is taken from one `build_message` of a
    stand-in meta; the per-recipient values are written in as bytes where the stdlib would write
    them unchanged (see `_literal`). A recipient whose values it would change is built by the
    stdlib instead, so the wire form is always that of `build_message`; the meta stays on one line
    and a header too long for one line is refused (`MessageError`) just the same.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        account_id: int,
        label: str,
        variant: int,
        receiver_url: str | None = None,
        content: Content = Content(),
    ) -> None:
        self.provider = provider
        self.receiver_url = receiver_url
        self.content = content
        self._dates: dict[float, bytes] = {}
        self._parts = self._split(Meta(_SLOT_EMAIL, account_id, 0, variant, label, -1))

    @property
    def fast(self) -> bool:
        """False where the campaign's message could not be cut: every one is built by the stdlib."""
        return self._parts is not None

    def _split(self, slot: Meta) -> tuple[list[bytes | str], int] | None:
        """The stand-in message cut at each per-recipient value; None where it cannot be cut."""
        try:
            message = build_message(
                self.provider, slot, receiver_url=self.receiver_url, content=self.content
            )
        except MessageError:
            return None  # each message is refused by the stdlib build, with its reason
        if not is_plain(f"x@{self.provider.from_address.split('@')[1]}"):
            return None  # a Message-ID domain the stdlib might rewrite
        head, _, body = to_bytes(message).partition(b"\r\n\r\n")
        parts: list[bytes | str] = []
        chunk = b""
        for line in head.split(b"\r\n"):
            name = line.partition(b":")[0].decode("ascii", "replace").lower()
            if line[:1] in (b" ", b"\t") or name not in _PER_MESSAGE:
                chunk += line + b"\r\n"
                continue
            parts += [chunk, name]
            chunk = b""
        chunk += b"\r\n"
        url_line = 0
        if self.provider.preference_center != "none":
            url = _preference_url(self.provider, slot, slot.encode(), self.receiver_url, True)
            before, found, after = body.partition(url.encode())
            if not found or url.encode() in after:
                return None  # the body is encoded (not 7bit or 8bit): no link to replace
            url_line = len(before.rpartition(b"\n")[2]) + len(after.partition(b"\r\n")[0])
            parts += [chunk + before, "url", after]
        else:
            parts.append(chunk + body)
        return parts, url_line

    def _date(self, when: float) -> bytes:
        line = self._dates.get(when)
        if line is None:
            date = EmailMessage(policy=POLICY)
            date["Date"] = formatdate(when, usegmt=True)
            line = self._dates[when] = date.as_bytes(policy=POLICY).partition(b"\r\n")[0]
        return line

    def render(self, meta: Meta, meta_text: str | None = None) -> bytes:
        """The wire form of `build_message(provider, meta, ...)`, equal header for header.

        `meta_text` is `meta.encode()` where the caller has it already (it is not free).
        """
        if meta_text is None:
            meta_text = meta.encode()
        _check_unfolded(HEADER_NAME, meta_text)
        fast = self._parts is not None and is_plain(meta.email)
        url = ""
        if fast and self._parts is not None and self.provider.preference_center != "none":
            url = _preference_url(self.provider, meta, meta_text, self.receiver_url, True)
            _check_unfolded(LIST_UNSUBSCRIBE, f"<{url}>")
            fast = _literal(url) and len(url) + self._parts[1] <= MAX_LINE
        if not fast or self._parts is None or not _literal(meta_text):
            return to_bytes(
                build_message(
                    self.provider, meta, receiver_url=self.receiver_url, content=self.content
                )
            )
        domain = self.provider.from_address.split("@")[1]
        values = {
            "to": f"To: {meta.email}\r\n".encode(),
            "date": self._date(meta.sent_at) + b"\r\n",
            "message-id": f"Message-ID: {make_msgid(f'bb{meta.message_id}', domain)}\r\n".encode(),
            HEADER_NAME.lower(): f"{HEADER_NAME}: {meta_text}\r\n".encode(),
            LIST_UNSUBSCRIBE.lower(): f"{LIST_UNSUBSCRIBE}: <{url}>\r\n".encode(),
            "url": url.encode(),
        }
        return b"".join([part if type(part) is bytes else values[part] for part in self._parts[0]])
