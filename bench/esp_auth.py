"""What the authentication verdicts add to the fake ESP's work on one message at DATA.

At DATA the handler reads the meta, keys the message and decides each recipient's outcome; with
a scenario `[authentication]` table it also verifies DKIM (dkimpy, RSA-2048), SPF and DMARC,
writes the Authentication-Results header, and applies the bulk-sender rules. This bench times
the pure work of the first against the same plus the second, on one signed campaign message
from the platform's own builder and the shipped `bulk-sender-rules` scenario, interleaved round
by round (A B A B ...) because the machine is shared. It prints min/median/max per message of
each, and last the median with verification over the median without (`ratio=12.3`, say): how
many times dearer a message is to the ESP when it authenticates.

    python bench/esp_auth.py [--rounds 7] [--messages 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from reference_impl.protocol.meta import Meta
from reference_impl.sender.dkim import generate_key, sign_message
from reference_impl.sender.message import build_message, to_bytes
from reference_impl.sender.provider import Provider
from simulator.esp.auth import Zone, authenticate, header_value, judge, read_facts, stamp
from simulator.esp.headers import extract_header, message_key
from simulator.esp.outcomes import Decider
from simulator.esp.scenario import load_scenario

DOMAIN = "platform.example"
CLIENT_IP = "192.0.2.10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key.pem"
        line = generate_key("bench", DOMAIN, path)
        pem = path.read_bytes()
    provider = Provider(
        "bench",
        "127.0.0.1",
        25,
        f"news@{DOMAIN}",
        preference_center="custom",
        preference_center_url=f"https://{DOMAIN}/u?e={{email}}",
    )
    provider = replace(provider, dkim_selector="bench", dkim_domain=DOMAIN, dkim_key_pem=pem)
    meta = Meta("user@example.com", 1568798080, 1730714617, 0, "wzrk_default", -1)
    raw = sign_message(provider, to_bytes(build_message(provider, meta)))
    scenario = load_scenario("bulk-sender-rules")
    assert scenario.authentication is not None
    records = dict(scenario.authentication.zone.records)
    records["bench._domainkey." + DOMAIN] = (
        "".join(line.split(" IN TXT ", 1)[1].split('"')[1::2]),
    )
    zone = Zone(records)
    decider = Decider(scenario, seed=0)
    sender = f"news@{DOMAIN}"
    blocklist, enforcement = scenario.blocklist, scenario.enforcement

    def plain() -> None:
        for _ in range(args.messages):
            decider.decide(message_key(raw, extract_header(raw)), meta.email)

    def verified() -> None:
        for _ in range(args.messages):
            facts = read_facts(raw)
            verdicts = authenticate(raw, zone, CLIENT_IP, sender, "mta.example", facts)
            stored = stamp(raw, header_value("esp.bench", verdicts))
            fate = judge(verdicts, facts, blocklist, enforcement, CLIENT_IP, sender)
            assert fate is None and verdicts.dmarc == "pass"
            decider.decide(message_key(stored, extract_header(stored)), meta.email)

    without: list[float] = []
    with_auth: list[float] = []
    verified()
    for _ in range(args.rounds):
        for work, times in ((plain, without), (verified, with_auth)):
            started = time.perf_counter()
            work()
            times.append((time.perf_counter() - started) / args.messages * 1e6)
    for name, times in (("without verification", without), ("with verification", with_auth)):
        low, mid, high = min(times), statistics.median(times), max(times)
        print(f"{name}: {low:.0f} / {mid:.0f} / {high:.0f} us per message (min/median/max)")
    print(f"ratio={statistics.median(with_auth) / statistics.median(without):.2f}")


if __name__ == "__main__":
    main()
