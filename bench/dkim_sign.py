"""What DKIM signing adds to the cost of one message's bytes.

A signing provider's message is built (`build_message`, `to_bytes`) and then signed
(`dkim.sign_message`, RSA-2048, dkimpy) in `SmtpSession.send`. This bench times building alone
against building and signing, on the same provider and meta, interleaved round by round (A B A B
...) because the machine is shared. The last line is the median build-and-sign time over the
median build time (`ratio=5.13`, say): how many times dearer a signed message's bytes are.

    python bench/dkim_sign.py [--rounds 7] [--messages 100]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key.pem"
        generate_key("bench", "acme.example", path)
        pem = path.read_bytes()
    plain = Provider(
        "bench",
        "127.0.0.1",
        25,
        "news@acme.example",
        preference_center="custom",
        preference_center_url="https://acme.example/u?e={email}",
    )
    signing = replace(plain, dkim_selector="bench", dkim_domain="acme.example", dkim_key_pem=pem)
    meta = Meta("user@example.com", 1568798080, 1730714617, 0, "wzrk_default", -1)

    def build() -> None:
        for _ in range(args.messages):
            sign_message(plain, to_bytes(build_message(plain, meta)))

    def build_and_sign() -> None:
        for _ in range(args.messages):
            sign_message(signing, to_bytes(build_message(signing, meta)))

    unsigned: list[float] = []
    signed: list[float] = []
    for _ in range(args.rounds):
        for work, times in ((build, unsigned), (build_and_sign, signed)):
            started = time.perf_counter()
            work()
            times.append((time.perf_counter() - started) * 1000 / args.messages)
    base, cost = statistics.median(unsigned), statistics.median(signed)
    print(f"build only: {base:.2f} ms per message (median of {args.rounds} rounds)")
    print(f"build and sign: {cost:.2f} ms per message")
    print(f"ratio={cost / base:.2f}")


if __name__ == "__main__":
    main()
