"""The ESP side's statement of the protocol: the batches it builds, what a receiver must answer.

One model (`expect`), one comparison (`difference`), asked by the fake ESP's reply check
(`checks`), the batch builder (`payloads`) and the conformance suite alike. It imports nothing of
`reference_impl`, whose receiver it judges.
"""

from simulator.protocol.checks import check_response
from simulator.protocol.difference import Difference, difference
from simulator.protocol.expect import Expected, batch_reply, expected_for, expected_response
from simulator.protocol.payloads import BuiltBatch, ExpectedFailure, build_batch

__all__ = [
    "BuiltBatch",
    "Difference",
    "Expected",
    "ExpectedFailure",
    "batch_reply",
    "build_batch",
    "check_response",
    "difference",
    "expected_for",
    "expected_response",
]
