"""`callbacks.meta_mangling = "python-email"`: the meta as a stdlib-email ESP hands it back.

The values asserted here were measured on Python 3.11.7 (cpython gh-124452) and are the ones
docs/simulator.md documents.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.esp.mangling import MetaManglingError, mangle, python_email

# gh-124452 is fixed in 3.12.8 and 3.13.1; the project runs on 3.11, where every release has it.
ON_3_11 = pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="gh-124452 fixed after 3.11")


def meta_of(length: int) -> str:
    """A meta-shaped value (no whitespace, trailing pipe) of exactly `length` characters."""
    head = "u@ex.co|1568798080|1730714617|20241104|0|c"
    tail = "|-17005907|"
    return head + "c" * (length - len(head) - len(tail)) + tail


@ON_3_11
@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (60, "unchanged"),  # fits after "X-CleverTap_META: " within 78 columns
        (61, "leading space"),  # the first length folded onto a continuation line
        (74, "leading space"),
        (77, "leading space"),  # " " + 77 = 78, the last length that fits a continuation line
        (78, "unchanged"),  # from here policy.SMTP writes RFC 2047 words; parsing decodes them
        (120, "unchanged"),
        (200, "unchanged"),
        (1200, "unchanged"),
    ],
)
def test_python_email_mangling_measured_on_3_11_7(length: int, expected: str) -> None:
    """A well-known mangling: 61..77-character metas get one leading space, nothing else does."""
    meta = meta_of(length)
    assert len(meta) == length
    got = python_email(meta)
    assert got == (" " + meta if expected == "leading space" else meta)


@ON_3_11
def test_none_mangling_returns_the_meta_unchanged() -> None:
    assert mangle(meta_of(74), "none") == meta_of(74)
    assert mangle(meta_of(74), "python-email") == " " + meta_of(74)


@given(meta=st.text(max_size=300))
def test_python_email_mangling_never_returns_cr_or_lf_and_only_raises_its_own_error(
    meta: str,
) -> None:
    """Any text in: a one-line value out, or MetaManglingError (the handler then echoes as is)."""
    try:
        got = python_email(meta)
    except MetaManglingError as error:
        assert "email package" in str(error)
    else:
        assert "\r" not in got and "\n" not in got


def test_a_value_the_email_package_refuses_raises_a_named_error() -> None:
    with pytest.raises(MetaManglingError, match="refused the meta"):
        python_email("a\u2028b")
