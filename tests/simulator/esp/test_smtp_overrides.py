"""FaultySMTP's speed overrides of private aiosmtpd 1.4.x methods agree with aiosmtpd's own.

Requirement: overriding `_getaddr` and the hook lookup in `SMTP.__init__` (to drop per-message and
per-connection waste) gives up no protocol check: every address parses to the same answer, and
every connection finds the same AUTH mechanisms, commands and handler hooks.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import example, given
from hypothesis import strategies as st

from simulator.esp.handler import ESPHandler, FaultySMTP, _advertise_pipelining
from simulator.esp.scenario import load_scenario
from simulator.esp.spool import SpoolWriter

WEIRD = [
    "",
    "<>",
    " <> SIZE=10",
    "<user@example.com>",
    "<user@example.com> SIZE=2048 BODY=8BITMIME",
    "user@example.com",
    "user@example.com SIZE=1",
    "  <user@example.com>",
    '<"quoted local"@example.com>',
    '<"quo\\"ted"@example.com>',
    '"no brackets"@example.com',
    "<@relay.example:user@example.com>",
    "<@a.example,@b.example:user@example.com>",
    "<user@[192.0.2.1]>",
    "<user@[IPv6:2001:db8::1]>",
    "<üser@exämple.com> SMTPUTF8",
    "<用户@例子.广告>",
    "<user@example.com",
    "user@example.com>",
    "<user>",
    "<@example.com>",
    "<user@>",
    "<a@b@c>",
    "<user..dots@example.com>",
    "<.lead@example.com>",
    "<(comment)user@example.com>",
    "<user@example.com>>",
    "<<user@example.com>>",
    "<user name@example.com>",
    "<\x00@example.com>",
    "<" + "l" * 80 + "@example.com>",
    "MAIL FROM:<x@y>",
    "0@",
    "<a.b@c.d> (comment) SIZE=1",
    "<a.b@c.d>(comment)",
    "<a..b@c.d>",
    "<a@c.d.>",
    "<a@c.d>\t\tSIZE=1",
    "<a@c.d>\r\n",
    "<0@[>",
]

ATOMS = st.sampled_from(['"', "<", ">", "@", ":", ",", "[", "]", "(", ")", "\\", " ", ".", "ü"])
# Near the fast path for `<dot-atom@dot-atom>`: atext, dots, and the characters that end it.
NEAR_SIMPLE = st.text(st.sampled_from("aZ9!#'`{|}~-.@()\\\" \t\r\nü\x00<>[]:;,"), max_size=12)
ADDRESS_TEXT = st.one_of(
    st.sampled_from(WEIRD),
    st.builds(
        lambda local, domain, rest: f"<{local}@{domain}>{rest}",
        NEAR_SIMPLE,
        NEAR_SIMPLE,
        st.sampled_from(
            ["", " SIZE=1", "\t BODY=8BITMIME", " (c) SIZE=1", "(c)", "  ", "x", "\r\n"]
        ),
    ),
    st.text(st.one_of(ATOMS, st.characters(codec="utf-8")), max_size=40),
    st.builds(
        lambda local, domain, rest: f"<{local}@{domain}>{rest}",
        st.text(max_size=20),
        st.text(max_size=20),
        st.sampled_from(["", " SIZE=1", " SMTPUTF8", ">"]),
    ),
)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def servers(
    loop: asyncio.AbstractEventLoop, handler: object, **kwargs: object
) -> tuple[SMTP, SMTP]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            SMTP(handler, hostname="esp.test", loop=loop, **kwargs),
            FaultySMTP(handler, hostname="esp.test", loop=loop, **kwargs),
        )


def outcome(getaddr: Callable[[str], object], arg: str) -> object:
    """The answer, or the exception raised: the stdlib parser raises IndexError on some input
    (e.g. `0@`), which aiosmtpd answers with a 500, so ours must raise the same."""
    try:
        return getaddr(arg)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("local_part_limit", [0, 10, 64])
@given(arg=ADDRESS_TEXT)
@example(arg="<" + "l" * 11 + "@example.com>")
def test_getaddr_agrees_with_aiosmtpd_on_any_address(
    loop: asyncio.AbstractEventLoop, local_part_limit: int, arg: str
) -> None:
    theirs, ours = servers(loop, object())
    theirs.local_part_limit = ours.local_part_limit = local_part_limit
    expected = outcome(theirs._getaddr, arg)
    assert outcome(ours._getaddr, arg) == expected
    assert outcome(ours._getaddr, arg) == expected, "a remembered answer is the same answer"


def bound(methods: dict) -> dict:
    """Hook or method tables compared by what they call, not by bound-method identity."""
    return {
        name: (getattr(m, "__func__", m), getattr(m, "__self__", None))
        for name, m in methods.items()
    }


@pytest.mark.parametrize("scenario", ["smoke", "mixed", "smtp-faults"])
@pytest.mark.parametrize("credentials", [None, {"platform": "s3cret"}])
def test_connection_finds_the_same_mechanisms_commands_and_hooks(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, scenario: str, credentials: dict | None
) -> None:
    handler = ESPHandler(load_scenario(scenario), 7, SpoolWriter(tmp_path / "s.db"), credentials)
    theirs, ours = servers(loop, handler, authenticator=handler.authenticate)
    assert sorted(ours._auth_methods) == sorted(theirs._auth_methods)
    for name, impl in theirs._auth_methods.items():
        assert ours._auth_methods[name].is_builtin == impl.is_builtin
        assert ours._auth_methods[name].method.__func__ is impl.method.__func__
    assert {n: f for n, (f, _) in bound(ours._smtp_methods).items()} == {
        n: f for n, (f, _) in bound(theirs._smtp_methods).items()
    }
    assert all(m.__self__ is ours for m in ours._smtp_methods.values())
    ours_hooks, theirs_hooks = dict(ours._handle_hooks), dict(theirs._handle_hooks)
    advertise = ours_hooks.pop("EHLO")
    their_ehlo = theirs_hooks.pop("EHLO", None)
    assert bound(ours_hooks) == bound(theirs_hooks)
    # EHLO alone differs on purpose: PIPELINING is listed, then the handler's own hook runs.
    assert advertise.func is _advertise_pipelining
    assert bound({"EHLO": advertise.args[0]}) == bound({"EHLO": their_ehlo})
    assert ours._ehlo_hook_ver == "new"
    assert theirs._ehlo_hook_ver in (None, "new")


def test_dir_is_whole_once_constructed(loop: asyncio.AbstractEventLoop) -> None:
    theirs, ours = servers(loop, object())
    assert set(dir(theirs)) <= set(dir(ours))
    assert "_constructing" not in vars(ours)


def test_handler_dir_is_whole_outside_construction(tmp_path: Path) -> None:
    handler = ESPHandler(load_scenario("smtp-faults"), 7, SpoolWriter(tmp_path / "s.db"))
    names = dir(handler)
    assert {"handle_RCPT", "handle_DATA", "authenticate", "scenario"} <= set(names)
    assert not handler.listing_hooks
