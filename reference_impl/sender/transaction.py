"""One SMTP mail transaction as bytes out and replies in: MAIL, RCPT, DATA, content. Pure.

Why not smtplib's `mail`/`rcpt`/`data`: each waits for its reply before the next command, four
round trips a message, and its reply reading cost more CPU than building the message. Where the
server advertises PIPELINING (RFC 2920; Postfix and the large ESPs do), MAIL, RCPT and DATA go
out as one group and their replies are read in order, two round trips a message. Without it the
same `Transaction` writes one command per reply, as smtplib did.

What is reported does not depend on pipelining: the first refused stage, with its reply, is the
recipient's failure, exactly as when each command waited for its reply (`errors.classify` turns
it into a section 6 error). RFC 2920 3.1: every reply of a group is read, and a DATA accepted
after a refused MAIL or RCPT gets a lone "." so no message travels. A 421 means the server is
closing: nothing more is read, and the session is closed instead of reset.

The wire form is smtplib's, byte for byte: its lower-case verbs, its refusal of CR or LF inside a
command, its dot-stuffing, the CRLF added before the final "."; and replies are read as its
`getreply` reads them (continuation lines joined with LF, an unreadable code is -1, a line over
`MAX_REPLY_LINE` is its "500 Line too long." and the connection cannot be trusted any more).
`session.SmtpSession.send` does the socket I/O around it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from reference_impl.sender import errors as e

__all__ = [
    "ACCEPTED",
    "CLOSING",
    "LINE_TOO_LONG",
    "MAX_REPLY_LINE",
    "Refusal",
    "Reply",
    "ReplyParser",
    "Transaction",
    "command",
    "content",
    "mail_command",
]

# smtplib's _MAXLINE: the longest reply line it reads, newline included.
MAX_REPLY_LINE = 8192
CLOSING = 421
# The one command the server's reply to each step must be to go on (RFC 5321 4.3.2).
ACCEPTED = {"mail": (250,), "rcpt": (250, 251), "data": (354,), "content": (250,)}
# The stage each step is reported under (the message content's reply is the DATA stage's).
_STAGE = {"mail": e.MAIL, "rcpt": e.RCPT, "data": e.DATA, "content": e.DATA}
_STEPS = ("mail", "rcpt", "data", "content")
_LONE_DOT = b".\r\n"
_DATA = b"data\r\n"
_LINE_START_DOT = re.compile(rb"(?m)^\.")
NEWLINE_IN_COMMAND = "command and arguments contain prohibited newline characters: {text}"


class Reply(NamedTuple):
    """One whole server reply, as smtplib's `getreply` returns it: code, lines joined by LF.

    A tuple, as smtplib's is: several are made for every message."""

    code: int
    text: bytes


LINE_TOO_LONG = Reply(500, b"Line too long.")


class Refusal(NamedTuple):
    """The first step the server refused: its stage (`errors.MAIL`, ...) and its reply."""

    stage: str
    reply: Reply


def command(verb: str, argument: str = "") -> bytes:
    """One command line as smtplib's `putcmd` writes it; a CR or LF in it is a ValueError.

    A newline would end the command early and let the rest be read as a command of its own.
    """
    text = f"{verb} {argument}" if argument else verb
    if "\r" in text or "\n" in text:
        shown = text.replace("\n", "\\n").replace("\r", "\\r")
        raise ValueError(NEWLINE_IN_COMMAND.format(text=shown))
    return f"{text}\r\n".encode("ascii")


def mail_command(sender: str) -> bytes:
    """MAIL FROM for the path `sender` (written as smtplib's `mail` writes it, no parameters)."""
    return command("mail", f"FROM:{sender}")


def content(data: bytes) -> bytes:
    """The message as sent after DATA's 354, as smtplib's `data` sends bytes: each line that
    starts with "." gets another (RFC 5321 4.5.2), CRLF is added if missing, then ".".
    """
    if data.startswith(b".") or b"\n." in data:
        data = _LINE_START_DOT.sub(b"..", data)
    if data[-2:] != b"\r\n":
        data += b"\r\n"
    return data + b".\r\n"


class ReplyParser:
    """Whole replies out of the bytes a socket gave, in whatever pieces they came."""

    def __init__(self) -> None:
        self._buffer = b""
        self._lines: list[bytes] = []
        self.broken = False

    @property
    def pending(self) -> bool:
        """Bytes of a reply not yet complete are held."""
        return bool(self._buffer or self._lines)

    def feed(self, data: bytes) -> list[Reply]:
        """The replies `data` completes. After an over-long line, `LINE_TOO_LONG` and nothing
        more: smtplib closes the connection there, as the reply stream cannot be re-aligned."""
        if self.broken:
            return []
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        replies: list[Reply] = []
        for line in lines:
            if len(line) >= MAX_REPLY_LINE:  # MAX_REPLY_LINE counts the newline
                return self._too_long(replies)
            text = line[4:].strip(b" \t\r\n")
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
            else:
                if line[3:4] == b"-":
                    self._lines.append(text)
                    continue
            if self._lines:
                text = b"\n".join([*self._lines, text])
                self._lines = []
            replies.append(Reply(code, text))
        if len(self._buffer) > MAX_REPLY_LINE:
            return self._too_long(replies)
        return replies

    def _too_long(self, replies: list[Reply]) -> list[Reply]:
        self.broken = True
        self._buffer = b""
        self._lines = []
        return [*replies, LINE_TOO_LONG]


class Transaction:
    """MAIL FROM, RCPT TO, DATA and the content for one recipient, as a series of writes.

    `start()` gives the first bytes to write; each reply, in order, goes to `receive`, which gives
    the bytes to write next (maybe none) until `done`. `stage` is the stage whose reply is awaited
    (a timeout or a dropped connection is reported there); `refusal` is the first refused step;
    `closing` says the server is going away (421), so the session is closed, not reset.
    """

    def __init__(self, mail: bytes, recipient: str, data: bytes, *, pipelining: bool) -> None:
        """`mail` is the MAIL command (`mail_command`), the same for every message of a session."""
        self.pipelining = pipelining
        self._commands = (mail, command("rcpt", f"TO:{recipient}"), _DATA)
        self._data = data
        self._awaited = 0
        self.refusal: Refusal | None = None
        self.closing = False
        self.done = False

    @property
    def stage(self) -> str:
        return _STAGE[_STEPS[min(self._awaited, len(_STEPS) - 1)]]

    def start(self) -> bytes:
        return b"".join(self._commands) if self.pipelining else self._commands[0]

    def receive(self, reply: Reply) -> bytes:
        """Take the reply to the step awaited; the bytes to write next (b"" for none)."""
        if self.done:
            raise ValueError(f"a reply after the transaction ended: {reply}")
        step = _STEPS[self._awaited]
        self._awaited += 1
        accepted = reply.code in ACCEPTED[step]
        if not accepted and self.refusal is None:
            self.refusal = Refusal(_STAGE[step], reply)
        if reply.code == CLOSING:
            self.closing = True
            self.done = True
            return b""
        if step == "content":
            self.done = True
            return b""
        if step == "data":
            if not accepted:
                self.done = True
                return b""
            # RFC 2920 3.1: DATA accepted though MAIL or RCPT was not: end it with nothing in it.
            return _LONE_DOT if self.refusal is not None else content(self._data)
        if self.pipelining:
            return b""  # the group's next replies are on their way
        if self.refusal is not None:
            self.done = True
            return b""
        return self._commands[self._awaited]
