"""Issue 16: verification never changes a byte of the meta or the body the ESP keeps.

A property over messages with any meta, any header order and any body: the verdicts read the
bytes only; the stored message is the received one with one `Authentication-Results` line in
front, from which the meta is read back byte-exact, the body is unchanged, and the DKIM
signature still verifies (the header is never among the signed ones).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.esp.auth import Zone, authenticate, header_value, stamp
from simulator.esp.auth.dkim_verdict import verify_dkim
from simulator.esp.auth.results import PASS, RESULTS
from simulator.esp.headers import extract_header
from tests.simulator.esp.auth.conftest import SELECTOR, Signer

# A meta as the platform writes it has no whitespace; any visible ASCII is allowed here.
metas = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200)
body_lines = st.lists(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80), max_size=8
)
extra_headers = st.lists(
    st.sampled_from(
        [
            "List-Unsubscribe: <https://example.com/u>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Reply-To: help@example.com",
            "Authentication-Results: spoofed.example; dkim=pass",
        ]
    ),
    max_size=4,
)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=metas, lines=body_lines, extra=extra_headers, ip=st.sampled_from(["192.0.2.10", "::1"]))
def test_stamping_the_verdicts_keeps_meta_body_and_signature(
    signer: Signer, newline: str, meta: str, lines: list[str], extra: list[str], ip: str
) -> None:
    headers = ["From: news@example.com", "To: r@example.org", f"X-CleverTap_META: {meta}", *extra]
    body = newline.join(lines) + newline
    unsigned = (newline.join(headers) + newline + newline + body).encode()
    raw = signer.sign(unsigned, "example.com")
    zone = Zone.of(
        {
            f"{SELECTOR}._domainkey.example.com": [signer.record],
            "example.com": ["v=spf1 ip4:192.0.2.10 -all"],
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
        }
    )
    before = bytes(raw)
    verdicts = authenticate(raw, zone, ip, "news@example.com", "mail.example.com")
    stored = stamp(raw, header_value("esp.test", verdicts))
    assert raw == before
    assert stored.endswith(raw)
    assert extract_header(stored) == extract_header(raw) == meta.encode()
    assert stored.split(newline.encode() * 2, 1)[1] == body.encode()
    assert verdicts.dkim == PASS
    assert {verdicts.spf, verdicts.dmarc} <= set(RESULTS)
    assert [s.result for s in verify_dkim(stored, zone)] == [PASS]
