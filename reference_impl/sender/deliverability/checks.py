"""What a mailbox provider's receiving server would make of one message, check by check. Pure.

Each check is a function returning a `Finding`: a verdict (PASS, WARN or FAIL), what was found
and, unless it passed, what to change. The message is the bytes a campaign would send; the DNS is
a `Zone` in memory. The judging is done by the libraries receivers use: dkimpy verifies the
signature and pyspf evaluates SPF, each with its DNS answered from the zone and nothing else, so
a check never touches the network. DMARC (RFC 7489) is evaluated here from their results, with the
organisational domain taken from the public suffix list (publicsuffixlist, shipped with its copy
of the list). The decisions, where the RFCs leave room, are in docs/sender.md, "Deliverability
check".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from urllib.parse import urlsplit

import dkim
import spf
from dkim.util import InvalidTagValueList, parse_tag_value
from publicsuffixlist import PublicSuffixList

from reference_impl.protocol.meta import HEADER_NAME
from reference_impl.sender.deliverability.authres import AuthenticationResults, MethodResult
from reference_impl.sender.deliverability.zone import Zone
from reference_impl.sender.dkim import MIN_KEY_BITS, txt_name, txt_value, zone_line
from reference_impl.sender.message import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    MAX_LINE,
    ONE_CLICK,
)

__all__ = [
    "ACCEPTED",
    "CHECKS",
    "DKIM",
    "DMARC",
    "FAIL",
    "IDS",
    "LINES",
    "META",
    "ONE_CLICK_POST",
    "PASS",
    "SPF",
    "UNSUBSCRIBE",
    "VERDICTS",
    "WARN",
    "DkimOutcome",
    "Finding",
    "check_accepted",
    "check_dkim",
    "check_dmarc",
    "check_headers",
    "check_ids",
    "check_lines",
    "check_list_unsubscribe",
    "check_message",
    "check_meta",
    "check_one_click",
    "check_reported",
    "check_spf",
    "dmarc_verdict",
    "evaluate_dkim",
    "evaluate_spf",
    "spf_verdict",
    "worst",
]

PASS = "PASS"
WARN = "WARN"
FAIL = "FAIL"
VERDICTS = (PASS, WARN, FAIL)

# The checks, in the order they are reported.
DKIM = "dkim"
SPF = "spf"
DMARC = "dmarc"
UNSUBSCRIBE = "list-unsubscribe"
ONE_CLICK_POST = "list-unsubscribe-post"
IDS = "message-id-date"
LINES = "line-length"
META = "meta-header"
CHECKS = (DKIM, SPF, DMARC, UNSUBSCRIBE, ONE_CLICK_POST, IDS, LINES, META)
# With --esp only, reported first: did the receiving server take the probe at all?
ACCEPTED = "accepted"

DKIM_UNSIGNED = "the message carries no DKIM-Signature"
DKIM_SIGN = (
    "sign: set dkim_selector, dkim_domain and dkim_key_file (or dkim_key_env) in the provider;"
    " `bounceback provider dkim-keygen` makes the key and prints its record"
)
DKIM_BAD = "dkimpy found the signature bad (body hash or header signature mismatch)"
DKIM_NO_RECORD = "no TXT record at {name}: verifiers cannot find the key (d={domain}, s={selector})"
DKIM_PUBLISH = "publish: {line}"
DKIM_PUBLISH_UNKNOWN = "publish the record `dkim-keygen` printed for this key at {name}"
DKIM_OTHER_KEY = "the record at {name} holds another key than the one that signs"
DKIM_INVALID = "the signature does not verify against {name}: {reason}"
DKIM_INVALID_ADVICE = (
    "the record matches the key, so the message changed after signing: look for a step that"
    " rewrites headers or body"
)
DKIM_VALID = "d={domain} s={selector}: the signature verifies against {name}"

SPF_PASS = "{ip} may send for {domain} (spf=pass)"
SPF_SINGLE_LABEL = "{domain} is not a multi-label domain name (RFC 7208 4.3)"
SPF_NO_RECORD = "{domain} has no SPF record (spf=none)"
SPF_NOT_LISTED = "{ip} is not authorised by {domain}'s SPF record (spf={result}{why})"
SPF_BROKEN = "{domain}'s SPF record cannot be evaluated (spf={result}{why})"
SPF_ADVICE = 'publish at {domain}: "v=spf1 ip4:{ip} -all" (or add ip4:{ip} to its record)'
SPF_ADVICE_V6 = 'publish at {domain}: "v=spf1 ip6:{ip} -all" (or add ip6:{ip} to its record)'
SPF_FIX = "fix the record at {domain}: {why}"

DMARC_NO_FROM = "the message has no From address to align with"
DMARC_NO_FROM_ADVICE = "every message needs a From address (from_address in the provider)"
DMARC_NONE = "no DMARC record at _dmarc.{domain}{parent}"
DMARC_NONE_ADVICE = (
    'publish at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:..." to start,'
    " then p=quarantine or p=reject"
)
DMARC_SEVERAL = "{name} has {count} DMARC records; receivers then apply none"
DMARC_SEVERAL_ADVICE = "keep one v=DMARC1 record at {name}"
DMARC_INVALID = "the DMARC record at {name} is invalid: {why}"
DMARC_READ_AS_NONE = " (the record is invalid, {why}; with its rua= it is read as p=none)"
DMARC_INVALID_ADVICE = "fix the record at {name}: v=DMARC1 first, then p=none|quarantine|reject"
DMARC_UNALIGNED = (
    "DMARC fails for From domain {domain}: neither DKIM ({dkim}) nor SPF ({spf}) passes aligned"
    " with it ({modes})"
)
DMARC_UNALIGNED_ADVICE = (
    "sign with dkim_domain = {domain} (or, with relaxed adkim, a domain of the same"
    " organisation), or send from an address whose domain SPF authorises"
)
DMARC_FIX_DKIM_ADVICE = (
    "make the DKIM signature of d={domain} verify (see the dkim check), or send from an address"
    " whose domain SPF authorises"
)
DMARC_MONITOR = "aligned ({via}), but p=none at {name} only monitors: failing mail is delivered"
DMARC_MONITOR_ADVICE = "move to p=quarantine, then p=reject, once the reports show only your mail"
DMARC_PASS = "aligned ({via}); p={policy} at {name}"

UNSUBSCRIBE_MISSING = f"no {LIST_UNSUBSCRIBE} header: bulk mail must offer one-click unsubscribe"
UNSUBSCRIBE_MISSING_ADVICE = (
    "set preference_center = 'clevertap' (the receiver's page, served over https) or 'custom'"
    " with an https preference_center_url"
)
UNSUBSCRIBE_HTTP = f"{LIST_UNSUBSCRIBE} has http:// but no https:// URI: {{uris}}"
UNSUBSCRIBE_NO_HTTPS = f"{LIST_UNSUBSCRIBE} has no https:// URI (RFC 8058 one-click): {{uris}}"
UNSUBSCRIBE_HTTPS_ADVICE = (
    "use an https preference_center_url (custom) or an https --receiver-url (clevertap)"
)
UNSUBSCRIBE_PASS = f"{LIST_UNSUBSCRIBE} has the https URI {{uri}}"
ONE_CLICK_MISSING = f"no {LIST_UNSUBSCRIBE_POST} header: the link is not one-click (RFC 8058)"
ONE_CLICK_WRONG = f"{LIST_UNSUBSCRIBE_POST} is {{value!r}}, not {ONE_CLICK!r}"
ONE_CLICK_ADVICE = f"send {LIST_UNSUBSCRIBE_POST}: {ONE_CLICK} with every {LIST_UNSUBSCRIBE}"
ONE_CLICK_PASS = f"{LIST_UNSUBSCRIBE_POST}: {ONE_CLICK}"

ACCEPTED_PASS = "the ESP at {where} accepted the probe"
REFUSED = "the ESP at {where} refused the probe at {stage}: {reply}"
REFUSED_ADVICE = (
    "the reply names the rule the probe broke; run with --zone and the same DNS records to see"
    " which check fails"
)
REPORTED = "{by} reported {said}"
NOT_REPORTED = "no {method} result"
REPORTED_DKIM = (
    "run with --zone and the domain's DNS records to see which record is missing or wrong"
)
REPORTED_SPF = "authorise the sending IP in the SPF record of the MAIL FROM domain (from_address)"
REPORTED_DMARC = (
    "publish a DMARC record for the From domain and sign with a dkim_domain aligned with it"
)
IDS_MISSING = "missing {names}"
IDS_ADVICE = "every message needs a Date (RFC 5322) and a Message-ID (bulk sender rules)"
IDS_PASS = "Message-ID and Date present"
LINES_LONG = "{count} line(s) over {limit} characters, the first is line {line} ({length})"
LINES_ADVICE = "fold long headers and encode long body lines (quoted-printable or base64)"
LINES_PASS = f"no line over {MAX_LINE} characters"
META_MISSING = f"no {HEADER_NAME} header"
META_SEVERAL = f"{{count}} {HEADER_NAME} headers"
META_CHANGED = f"the signed message's {HEADER_NAME} line differs from the meta sent: {{line!r}}"
META_ADVICE = "the meta must travel as one unfolded line, byte for byte (PROTOCOL.md section 2)"
META_PASS = f"{HEADER_NAME} is byte-exact after signing"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict, what was seen, and (unless it passed) what to change."""

    check: str
    verdict: str
    detail: str
    advice: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "verdict": self.verdict,
            "detail": self.detail,
            "advice": self.advice,
        }


def worst(findings: Iterable[Finding]) -> str:
    """The report's verdict: FAIL if any check failed, else WARN if any warned, else PASS."""
    seen = {finding.verdict for finding in findings}
    return next((v for v in (FAIL, WARN) if v in seen), PASS)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _header(message: bytes, name: str) -> list[str]:
    """Every value of header `name`, unfolded, as a receiver reads them."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(message)
    return [_unfold(str(value)) for value in parsed.get_all(name, [])]


def _first(message: bytes, name: str) -> str | None:
    values = _header(message, name)
    return values[0] if values else None


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The list, parsed once per process (it is shipped with the package, never fetched)."""
    return PublicSuffixList()


def _organisational_domain(domain: str) -> str:
    """RFC 7489 3.2: the registered domain, one label below its public suffix."""
    domain = domain.rstrip(".").lower()
    return _suffixes().privatesuffix(domain) or domain


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class DkimOutcome:
    """The first DKIM signature as a verifier saw it: who signed, and whether it verified."""

    domain: str | None
    selector: str | None
    valid: bool
    reason: str = ""


def evaluate_dkim(message: bytes, zone: Zone) -> DkimOutcome:
    """Verify the first DKIM-Signature with dkimpy, its key looked up in `zone` only."""
    values = _header(message, "DKIM-Signature")
    if not values:
        return DkimOutcome(None, None, False, DKIM_UNSIGNED)
    try:
        tags = parse_tag_value(values[0].encode("ascii", "replace"))
    except InvalidTagValueList as exc:
        return DkimOutcome(None, None, False, str(exc))
    domain = tags.get(b"d", b"").decode("ascii", "replace").lower() or None
    selector = tags.get(b"s", b"").decode("ascii", "replace") or None
    verifier = dkim.DKIM(message, minkey=MIN_KEY_BITS)
    try:
        valid = verifier.verify(dnsfunc=zone.dkim_dnsfunc())
    except dkim.DKIMException as exc:
        return DkimOutcome(domain, selector, False, str(exc))
    return DkimOutcome(domain, selector, bool(valid), "" if valid else DKIM_BAD)


def _key_of(record: str) -> bytes | None:
    try:
        return re.sub(
            rb"\s", b"", parse_tag_value(record.encode("ascii", "replace")).get(b"p", b"")
        )
    except InvalidTagValueList:
        return None


def check_dkim(outcome: DkimOutcome, zone: Zone, public_key: bytes | None) -> Finding:
    """DKIM present and valid; when the record is missing or holds another key, the record to
    publish (`public_key` is the signing key's public half, DER, when the caller knows it)."""
    if outcome.domain is None or outcome.selector is None:
        return Finding(DKIM, FAIL, outcome.reason, DKIM_SIGN)
    name = txt_name(outcome.selector, outcome.domain)
    publish = (
        DKIM_PUBLISH.format(line=zone_line(outcome.selector, outcome.domain, public_key))
        if public_key is not None
        else DKIM_PUBLISH_UNKNOWN.format(name=name)
    )
    if not zone.txt(name):
        detail = DKIM_NO_RECORD.format(name=name, domain=outcome.domain, selector=outcome.selector)
        return Finding(DKIM, FAIL, detail, publish)
    if outcome.valid:
        detail = DKIM_VALID.format(domain=outcome.domain, selector=outcome.selector, name=name)
        return Finding(DKIM, PASS, detail)
    expected = _key_of(txt_value(public_key)) if public_key is not None else None
    if expected is not None and _key_of(zone.txt(name)[0]) != expected:
        return Finding(DKIM, FAIL, DKIM_OTHER_KEY.format(name=name), publish)
    detail = DKIM_INVALID.format(name=name, reason=outcome.reason)
    return Finding(DKIM, FAIL, detail, DKIM_INVALID_ADVICE)


class _ZoneQuery(spf.query):
    """pyspf's query with its one DNS method answered from the zone: TXT records only, every
    other type empty, as for a name that has none (so `a`, `mx` and `ptr` match nothing)."""

    def __init__(self, zone: Zone, **kwargs: object) -> None:
        self._zone = zone
        super().__init__(**kwargs)

    def dns(
        self, name: str, qtype: str, cnames: object = None, ignore_void: bool = False
    ) -> list[list[bytes]]:
        found = self._zone.txt(str(name)) if qtype == "TXT" else ()
        result = [[record.encode("utf-8")] for record in found]
        # RFC 7208 4.6.4, as pyspf counts it: more than two lookups with no answer is permerror.
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def evaluate_spf(zone: Zone, mail_from: str) -> tuple[str, str]:
    """pyspf's result (`pass`, `fail`, `softfail`, `neutral`, `none`, `permerror`,
    `temperror`) and explanation for mail from `zone.client_ip` with envelope `mail_from`."""
    domain = _domain_of(mail_from)
    if "." not in domain:
        # RFC 7208 4.3: check_host() returns none at once for a name that is not multi-label;
        # pyspf would look it up.
        return "none", SPF_SINGLE_LABEL.format(domain=domain)
    query = _ZoneQuery(zone, i=zone.client_ip, s=mail_from, h=zone.helo)
    result, _code, explanation = query.check()
    return str(result), str(explanation)


def spf_verdict(result: str) -> str:
    """SPF `pass` PASSes; `softfail` and `neutral` only WARN, since receivers do not refuse mail
    for them, though the IP is not listed; anything else FAILs."""
    if result == "pass":
        return PASS
    return WARN if result in ("softfail", "neutral") else FAIL


def check_spf(result: str, explanation: str, zone: Zone, mail_from: str) -> Finding:
    """SPF passes for the sending IP (`spf_verdict`), with the record to publish when not."""
    domain = _domain_of(mail_from)
    why = f": {explanation}" if explanation else ""
    ip = zone.client_ip
    advice = (SPF_ADVICE_V6 if ":" in ip else SPF_ADVICE).format(domain=domain, ip=ip)
    if result == "pass":
        return Finding(SPF, PASS, SPF_PASS.format(ip=ip, domain=domain))
    if result == "none":
        detail = SPF_NO_RECORD.format(domain=domain) + (f"{why}" if "." not in domain else "")
        return Finding(SPF, FAIL, detail, advice)
    if result in ("permerror", "temperror"):
        detail = SPF_BROKEN.format(domain=domain, result=result, why=why)
        return Finding(SPF, FAIL, detail, SPF_FIX.format(domain=domain, why=explanation))
    detail = SPF_NOT_LISTED.format(ip=ip, domain=domain, result=result, why=why)
    return Finding(SPF, spf_verdict(result), detail, advice)


def dmarc_verdict(aligned: bool, policy: str | None) -> str:
    """DMARC FAILs unless DKIM or SPF passed aligned; aligned under `p=none` only WARNs, since
    the domain then asks receivers to deliver failing mail too, so nothing protects it yet."""
    if not aligned:
        return FAIL
    return WARN if (policy or "").lower() == "none" else PASS


def _aligned(domain: str | None, from_domain: str, mode: str) -> bool:
    """RFC 7489 3.1: strict is the same name; relaxed the same organisational domain."""
    if domain is None:
        return False
    if mode == "s":
        return domain.lower() == from_domain
    return _organisational_domain(domain) == _organisational_domain(from_domain)


# RFC 7489 6.4: `"v" *WSP "=" *WSP "DMARC1"` opens the record, the value exactly DMARC1 (its
# ABNF spells it %x44 %x4d ...); 6.6.3 discards every other record at the name.
_DMARC_VERSION = re.compile(r"\s*[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
POLICIES = ("none", "quarantine", "reject")


def _reports_to(rua: str | None) -> bool:
    """RFC 7489 6.6.3's test: `rua=` holds at least one syntactically valid URI (6.2: a URI,
    then an optional `!size`)."""
    for part in (rua or "").split(","):
        uri = part.strip().split("!", 1)[0]
        if urlsplit(uri).scheme and ":" in uri and uri.split(":", 1)[1]:
            return True
    return False


def _dmarc_records(zone: Zone, name: str) -> list[str]:
    return [r for r in zone.txt(name) if _DMARC_VERSION.match(r)]


def check_dmarc(
    from_domain: str, zone: Zone, dkim_outcome: DkimOutcome, spf_result: str, mail_from: str
) -> Finding:
    """A DMARC record for the From domain (or its organisational domain), and DKIM or SPF
    passing aligned with it; p=none only WARNs, since failing mail is still delivered."""
    from_domain = from_domain.rstrip(".").lower()
    if not from_domain:
        return Finding(DMARC, FAIL, DMARC_NO_FROM, DMARC_NO_FROM_ADVICE)
    org = _organisational_domain(from_domain)
    name = f"_dmarc.{from_domain}"
    records = _dmarc_records(zone, name)
    if not records and org != from_domain:
        name = f"_dmarc.{org}"
        records = _dmarc_records(zone, name)
    if not records:
        parent = f" or _dmarc.{org}" if org != from_domain else ""
        detail = DMARC_NONE.format(domain=from_domain, parent=parent)
        return Finding(DMARC, FAIL, detail, DMARC_NONE_ADVICE.format(domain=org))
    if len(records) > 1:
        detail = DMARC_SEVERAL.format(name=name, count=len(records))
        return Finding(DMARC, FAIL, detail, DMARC_SEVERAL_ADVICE.format(name=name))
    try:
        tags = {
            k.decode(): v.decode().strip().lower()
            for k, v in parse_tag_value(records[0].encode("ascii", "replace")).items()
        }
    except InvalidTagValueList as exc:
        tags, problem = {}, str(exc)
    else:
        problem = ""
    # RFC 7489 6.6.3: an invalid p=, or an sp= present and invalid, leaves no policy to apply,
    # for the organisational domain and its subdomains alike.
    for tag in ("p", "sp"):
        value = tags.get(tag, tags.get("p"))
        if not problem and value not in POLICIES:
            problem = f"{tag}={value!r} is not none, quarantine or reject"
    if problem and not _reports_to(tags.get("rua")):
        detail = DMARC_INVALID.format(name=name, why=problem)
        return Finding(DMARC, FAIL, detail, DMARC_INVALID_ADVICE.format(name=name))
    if problem:
        # RFC 7489 6.6.3: with a valid reporting URI, receivers SHOULD read the record as
        # `v=DMARC1; p=none`; the finding still says what is wrong with it.
        tags = {"p": "none"}
    policy = tags.get("sp", tags.get("p")) if name != f"_dmarc.{from_domain}" else tags.get("p")
    adkim, aspf = tags.get("adkim", "r"), tags.get("aspf", "r")
    via = []
    if dkim_outcome.valid and _aligned(dkim_outcome.domain, from_domain, adkim):
        via.append(f"DKIM d={dkim_outcome.domain}")
    spf_domain = _domain_of(mail_from)
    if spf_result == "pass" and _aligned(spf_domain, from_domain, aspf):
        via.append(f"SPF {spf_domain}")
    verdict = dmarc_verdict(bool(via), policy)
    if verdict == FAIL:
        detail = DMARC_UNALIGNED.format(
            domain=from_domain,
            dkim=f"d={dkim_outcome.domain}, {'valid' if dkim_outcome.valid else 'not valid'}",
            spf=f"{spf_domain}, spf={spf_result}",
            modes=f"adkim={adkim}, aspf={aspf}",
        )
        fix_dkim = _aligned(dkim_outcome.domain, from_domain, adkim)
        advice = DMARC_FIX_DKIM_ADVICE if fix_dkim else DMARC_UNALIGNED_ADVICE
        return Finding(DMARC, FAIL, detail, advice.format(domain=from_domain))
    if verdict == WARN:
        detail = DMARC_MONITOR.format(via=", ".join(via), name=name)
        if problem:
            detail += DMARC_READ_AS_NONE.format(why=problem)
            return Finding(DMARC, WARN, detail, DMARC_INVALID_ADVICE.format(name=name))
        return Finding(DMARC, WARN, detail, DMARC_MONITOR_ADVICE)
    return Finding(DMARC, PASS, DMARC_PASS.format(via=", ".join(via), policy=policy, name=name))


def check_list_unsubscribe(value: str | None) -> Finding:
    """An https URI in List-Unsubscribe (RFC 8058 one-click needs one; bulk sender rules
    require one-click). An http-only link FAILs: it carries the recipient's identity in clear."""
    if value is None:
        return Finding(UNSUBSCRIBE, FAIL, UNSUBSCRIBE_MISSING, UNSUBSCRIBE_MISSING_ADVICE)
    uris = re.findall(r"<([^>]*)>", value)
    https = [uri for uri in uris if urlsplit(uri.strip()).scheme.lower() == "https"]
    if https:
        return Finding(UNSUBSCRIBE, PASS, UNSUBSCRIBE_PASS.format(uri=https[0]))
    http = any(urlsplit(uri.strip()).scheme.lower() == "http" for uri in uris)
    detail = (UNSUBSCRIBE_HTTP if http else UNSUBSCRIBE_NO_HTTPS).format(uris=", ".join(uris))
    return Finding(UNSUBSCRIBE, FAIL, detail, UNSUBSCRIBE_HTTPS_ADVICE)


def check_one_click(value: str | None) -> Finding:
    """`List-Unsubscribe-Post: List-Unsubscribe=One-Click`, exactly (RFC 8058 3.1)."""
    if value is None:
        return Finding(ONE_CLICK_POST, FAIL, ONE_CLICK_MISSING, ONE_CLICK_ADVICE)
    if value.strip() != ONE_CLICK:
        return Finding(ONE_CLICK_POST, FAIL, ONE_CLICK_WRONG.format(value=value), ONE_CLICK_ADVICE)
    return Finding(ONE_CLICK_POST, PASS, ONE_CLICK_PASS)


def check_ids(message_id: str | None, date: str | None) -> Finding:
    """Message-ID and Date present: mailbox providers refuse or junk bulk mail without them."""
    missing = [name for name, v in (("Message-ID", message_id), ("Date", date)) if not v]
    if missing:
        return Finding(IDS, FAIL, IDS_MISSING.format(names=" and ".join(missing)), IDS_ADVICE)
    return Finding(IDS, PASS, IDS_PASS)


def check_lines(message: bytes) -> Finding:
    """No line over 998 characters (RFC 5322 2.1.1): servers refuse it, or break it and so the
    signature and the meta."""
    lines = message.split(b"\n")
    long = [(n, len(line.rstrip(b"\r"))) for n, line in enumerate(lines, 1)]
    long = [(n, length) for n, length in long if length > MAX_LINE]
    if long:
        detail = LINES_LONG.format(
            count=len(long), limit=MAX_LINE, line=long[0][0], length=long[0][1]
        )
        return Finding(LINES, FAIL, detail, LINES_ADVICE)
    return Finding(LINES, PASS, LINES_PASS)


def check_meta(message: bytes, meta_text: str) -> Finding:
    """The X-CleverTap_META line is one unfolded line equal to the meta sent, after signing."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
    lines = re.split(rb"\r?\n", head)
    prefix = HEADER_NAME.lower().encode("ascii") + b":"
    found = [n for n, line in enumerate(lines) if line.lower().startswith(prefix)]
    if not found:
        return Finding(META, FAIL, META_MISSING, META_ADVICE)
    if len(found) > 1:
        return Finding(META, FAIL, META_SEVERAL.format(count=len(found)), META_ADVICE)
    n = found[0]
    line = lines[n]
    folded = n + 1 < len(lines) and lines[n + 1][:1] in (b" ", b"\t")
    if folded or line != f"{HEADER_NAME}: {meta_text}".encode():
        shown = line.decode("utf-8", "replace") + (" (folded)" if folded else "")
        return Finding(META, FAIL, META_CHANGED.format(line=shown), META_ADVICE)
    return Finding(META, PASS, META_PASS)


def check_message(
    message: bytes, *, meta_text: str, zone: Zone, mail_from: str, public_key: bytes | None
) -> list[Finding]:
    """Every check of one message as sent with envelope sender `mail_from` from the zone's IP,
    in `CHECKS` order. `public_key` is the signing key's public half (DER), when it signs."""
    dkim_outcome = evaluate_dkim(message, zone)
    spf_result, explanation = evaluate_spf(zone, mail_from)
    from_value = _first(message, "From") or ""
    addresses = [address for _, address in getaddresses([from_value]) if address]
    from_domain = _domain_of(addresses[0]) if addresses else ""
    return [
        check_dkim(dkim_outcome, zone, public_key),
        check_spf(spf_result, explanation, zone, mail_from),
        check_dmarc(from_domain, zone, dkim_outcome, spf_result, mail_from),
        *check_headers(message, meta_text),
    ]


def check_headers(message: bytes, meta_text: str) -> list[Finding]:
    """The checks the message alone answers, whoever judges authentication (`CHECKS[3:]`)."""
    return [
        check_list_unsubscribe(_first(message, LIST_UNSUBSCRIBE)),
        check_one_click(_first(message, LIST_UNSUBSCRIBE_POST)),
        check_ids(_first(message, "Message-ID"), _first(message, "Date")),
        check_lines(message),
        check_meta(message, meta_text),
    ]


def check_accepted(where: str, refusal: tuple[str, str] | None) -> Finding:
    """Whether the receiving server took the probe: `refusal` is the stage and reply of a
    permanent refusal. A policy refusal (`550 5.7.26 ... dmarc-unaligned`) is the strongest
    deliverability verdict there is, so it is a FAIL line naming the reply, not an error."""
    if refusal is None:
        return Finding(ACCEPTED, PASS, ACCEPTED_PASS.format(where=where))
    stage, reply = refusal
    detail = REFUSED.format(where=where, stage=stage.upper(), reply=reply)
    return Finding(ACCEPTED, FAIL, detail, REFUSED_ADVICE)


def _said(result: MethodResult) -> str:
    """How a reported result reads in a finding: `dkim=fail (reason) header.d=...`."""
    reason = f" ({result.reason})" if result.reason else ""
    props = "".join(f" {k}={v}" for k, v in result.properties.items())
    return f"{result.method}={result.result}{reason}{props}"


def check_reported(results: AuthenticationResults) -> list[Finding]:
    """DKIM, SPF and DMARC as a receiving server reported them (its Authentication-Results),
    with the verdicts of the zone checks: DKIM passes if any signature passed; SPF by
    `spf_verdict`; DMARC passes, WARNs when the server notes p=none, else FAILs."""
    by = results.authserv_id
    findings = []
    dkims = results.of("dkim")
    passed = [r for r in dkims if r.result == "pass"]
    if passed:
        findings.append(Finding(DKIM, PASS, REPORTED.format(by=by, said=_said(passed[0]))))
    else:
        said = _said(dkims[0]) if dkims else NOT_REPORTED.format(method="dkim")
        findings.append(Finding(DKIM, FAIL, REPORTED.format(by=by, said=said), REPORTED_DKIM))
    for check, advice in ((SPF, REPORTED_SPF), (DMARC, REPORTED_DMARC)):
        found = results.of(check)
        if not found:
            detail = REPORTED.format(by=by, said=NOT_REPORTED.format(method=check))
            findings.append(Finding(check, FAIL, detail, advice))
            continue
        detail = REPORTED.format(by=by, said=_said(found[0]))
        if check == SPF:
            verdict = spf_verdict(found[0].result)
        else:
            verdict = dmarc_verdict(found[0].result == "pass", found[0].tag("p"))
            if verdict == WARN:
                detail, advice = f"{detail} (p=none)", DMARC_MONITOR_ADVICE
        findings.append(Finding(check, verdict, detail, advice if verdict != PASS else ""))
    return findings
