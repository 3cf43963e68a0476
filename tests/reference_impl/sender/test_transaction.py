"""The SMTP transaction's pure core: replies read as smtplib reads them, and pipelining (RFC 2920)
never changing what is reported for a recipient (issue 13).
"""

from __future__ import annotations

import io
import smtplib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.sender import errors as e
from reference_impl.sender.transaction import (
    CLOSING,
    LINE_TOO_LONG,
    MAX_REPLY_LINE,
    Reply,
    ReplyParser,
    Transaction,
    command,
    content,
    mail_command,
)

MAIL = mail_command("<news@acme.example>")
MESSAGE = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"
STEPS = ("mail", "rcpt", "data", "content")
CODES = st.sampled_from([250, 251, 354, 421, 450, 452, 503, 550, 554, -1])

# --- replies ------------------------------------------------------------------------------


def smtplib_replies(stream: bytes) -> list[Reply]:
    """What smtplib's own `getreply` makes of `stream`, reply after reply, up to its end."""
    client = smtplib.SMTP()
    client.file = io.BytesIO(stream)  # type: ignore[assignment]
    found = []
    while True:
        try:
            code, text = client.getreply()
        except smtplib.SMTPServerDisconnected:
            return found
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error  # smtplib gives its own "Line too long." as str
            return [
                *found,
                Reply(exc.smtp_code, error.encode() if isinstance(error, str) else error),
            ]
        found.append(Reply(code, text))


reply_line = st.one_of(
    st.builds(
        lambda code, sep, text, end: f"{code}{sep}".encode() + text + end,
        st.sampled_from(["250", "354", "421", "550", "2x0", "", "25"]),
        st.sampled_from(["-", " ", "", "\t"]),
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
        st.sampled_from([b"\r\n", b"\n"]),
    ),
    st.just(b"250 " + b"x" * (MAX_REPLY_LINE - 6) + b"\r\n"),  # the longest line read
    st.just(b"250 " + b"x" * (MAX_REPLY_LINE - 5) + b"\r\n"),  # one byte too long
)


@given(st.lists(reply_line, max_size=8), st.lists(st.integers(1, 9000), max_size=6))
def test_replies_are_read_as_smtplib_reads_them_in_any_pieces(
    lines: list[bytes], cuts: list[int]
) -> None:
    """Continuation lines, unreadable codes, over-long lines: the same replies as smtplib's
    `getreply`, however the socket splits the bytes."""
    stream = b"".join(lines)
    parser = ReplyParser()
    got: list[Reply] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        got += parser.feed(stream[start:cut])
        start = max(start, cut)
    assert got == smtplib_replies(stream)
    if got and got[-1] is LINE_TOO_LONG:
        assert parser.broken and parser.feed(b"250 OK\r\n") == []


def test_a_multiline_reply_is_one_reply_joined_by_newlines() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250-first\r\n250-sec") == []
    assert parser.pending
    assert parser.feed(b"ond\r\n250 last\r\n354 go\r\n") == [
        Reply(250, b"first\nsecond\nlast"),
        Reply(354, b"go"),
    ]
    assert not parser.pending


# --- commands and content -----------------------------------------------------------------


def test_commands_are_written_as_smtplib_writes_them_and_refuse_newlines() -> None:
    assert MAIL == b"mail FROM:<news@acme.example>\r\n"
    assert command("rcpt", "TO:<a@b.example>") == b"rcpt TO:<a@b.example>\r\n"
    for bad in ("TO:<a@b>\r\nRSET", "TO:<a@b>\nDATA", "TO:<a\r@b>"):
        with pytest.raises(ValueError, match="prohibited newline"):
            command("rcpt", bad)


@given(st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n")))
def test_content_is_dot_stuffed_and_ended_as_smtplib_sends_bytes(data: bytes) -> None:
    """RFC 5321 4.5.2: each line starting with "." gets another; CRLF "." CRLF ends it."""
    expected = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert content(data) == expected + b".\r\n"


# --- the transaction ----------------------------------------------------------------------


def drive(codes: dict[str, int], pipelining: bool) -> tuple[Transaction, list[bytes], int]:
    """A server answering each step with `codes[step]`: the client's verdict, what it wrote and
    how many replies it read."""
    transaction = Transaction(MAIL, "<user@example.com>", MESSAGE, pipelining=pipelining)
    writes = [transaction.start()]
    owed = writes[0].count(b"\r\n")
    step = 0
    while not transaction.done:
        assert owed > 0, "the client waits for a reply it never asked for"
        out = transaction.receive(Reply(codes[STEPS[step]], b"text"))
        step += 1
        owed -= 1
        if out:
            writes.append(out)
            owed += 1
    return transaction, writes, step


@given(st.fixed_dictionaries({step: CODES for step in STEPS}))
def test_pipelining_reports_exactly_what_one_command_at_a_time_reports(
    codes: dict[str, int],
) -> None:
    """Issue 13: the first refused step, with its reply, is the recipient's failure either way;
    the message travels only when MAIL, RCPT and DATA were all accepted."""
    pipelined, sent, read = drive(codes, pipelining=True)
    one_by_one, sent_one_by_one, read_one_by_one = drive(codes, pipelining=False)
    assert pipelined.refusal == one_by_one.refusal
    accepted = codes["mail"] == 250 and codes["rcpt"] in (250, 251) and codes["data"] == 354
    message = content(MESSAGE)
    assert (message in sent) == (message in sent_one_by_one) == accepted
    if pipelined.refusal is None:
        assert codes["content"] == 250
    for transaction, replies in ((pipelined, read), (one_by_one, read_one_by_one)):
        assert transaction.closing == (CLOSING in [codes[step] for step in STEPS[:replies]])


def test_the_group_is_mail_rcpt_data_in_one_write() -> None:
    _, writes, _ = drive({"mail": 250, "rcpt": 250, "data": 354, "content": 250}, pipelining=True)
    assert writes == [
        MAIL + b"rcpt TO:<user@example.com>\r\ndata\r\n",
        content(MESSAGE),
    ]
    _, writes, _ = drive({"mail": 250, "rcpt": 250, "data": 354, "content": 250}, pipelining=False)
    assert writes == [MAIL, b"rcpt TO:<user@example.com>\r\n", b"data\r\n", content(MESSAGE)]


def test_data_accepted_after_a_refused_rcpt_gets_a_lone_dot_rfc_2920() -> None:
    """RFC 2920 3.1: the client cannot assume DATA is refused; it ends the empty message."""
    transaction, writes, _ = drive(
        {"mail": 250, "rcpt": 550, "data": 354, "content": 554}, pipelining=True
    )
    assert writes[1:] == [b".\r\n"]
    assert transaction.refusal is not None
    assert (transaction.refusal.stage, transaction.refusal.reply.code) == (e.RCPT, 550)


def test_a_421_stops_reading_and_closes() -> None:
    """The server is going away: the group's later replies will never come."""
    transaction = Transaction(MAIL, "<a@example.com>", MESSAGE, pipelining=True)
    transaction.start()
    assert transaction.stage == e.MAIL
    assert transaction.receive(Reply(421, b"closing")) == b""
    assert transaction.done and transaction.closing
    assert transaction.refusal is not None and transaction.refusal.stage == e.MAIL


def test_the_awaited_stage_names_where_a_timeout_happened() -> None:
    transaction = Transaction(MAIL, "<a@example.com>", MESSAGE, pipelining=True)
    transaction.start()
    transaction.receive(Reply(250, b"ok"))
    assert transaction.stage == e.RCPT
    transaction.receive(Reply(250, b"ok"))
    assert transaction.stage == e.DATA
    transaction.receive(Reply(354, b"go"))
    assert transaction.stage == e.DATA
