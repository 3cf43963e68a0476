"""What DKIM signing adds to the cost of one message's bytes.

A signing provider's message is built (`build_message`, `to_bytes`) and then signed
(`dkim.sign_message`, RSA-2048: dkimpy's canonicalisation and hashing, the RSA step in OpenSSL
through `cryptography`) in `SmtpSession.send`. This bench times building alone against building
and signing, on the same provider and meta, interleaved round by round (A B A B ...) because the
machine is shared, in CPU time of this process (`time.process_time`: the work is all in this
thread, and wall time on a shared machine counts other jobs). The last line is the median
build-and-sign time over the median build time: how many times dearer a signed message's bytes
are (5.13 with dkimpy's own RSA).

    python bench/dkim_sign.py [--rounds 7] [--messages 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _procs import spread

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
            started = time.process_time()
            work()
            times.append((time.process_time() - started) * 1000 / args.messages)
    base, cost = statistics.median(unsigned), statistics.median(signed)
    print(f"build only, CPU ms per message (min / median / max): {spread(unsigned, 2)}")
    print(f"build and sign, CPU ms per message (min / median / max): {spread(signed, 2)}")
    print(f"ratio={cost / base:.2f}")


if __name__ == "__main__":
    main()
