"""RFC 8601 `Authentication-Results`, read on the platform side: what a receiving server says it
verified. Pure.

The fake ESP stores the header's value with each message it judged (`GET /messages`,
`authentication_results`); this is the platform side's own reading of the RFC's grammar, never
the simulator's writer. Comments (`(p=none)`) are kept per result, since servers put facts there
that have no property of their own, such as the DMARC policy; quoted strings may hold `;` and
`(`. A value that is not `authserv-id; method=result ...` is refused, naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reference_impl.errors import PlatformError

__all__ = [
    "AuthResultsError",
    "AuthenticationResults",
    "MethodResult",
    "parse_authentication_results",
]

NO_AUTHSERV = "has no authserv-id before its first ';'"
UNCLOSED = "has an unclosed {what}"
NOT_RESINFO = "{part!r} is not method=result"
_PAIR = re.compile(r'([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s"]+)')
_METHOD = re.compile(r"[A-Za-z0-9_\-]+(/[0-9]+)?")


class AuthResultsError(PlatformError, ValueError):
    """An `Authentication-Results` value that does not follow RFC 8601's grammar."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(f"Authentication-Results {value!r} {problem}")


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One `method=result`: its reason, its `ptype.property=value` pairs and its comments."""

    method: str
    result: str
    reason: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    comments: tuple[str, ...] = ()

    def tag(self, name: str) -> str | None:
        """A `name=value` said in a comment, such as DMARC's `(p=none)`; None when not said."""
        for comment in self.comments:
            for key, value in _PAIR.findall(comment):
                if key.lower() == name:
                    return _unquote(value)
        return None


@dataclass(frozen=True, slots=True)
class AuthenticationResults:
    """Who judged (`authserv_id`) and each method's result, in the header's order."""

    authserv_id: str
    results: tuple[MethodResult, ...]

    def of(self, method: str) -> tuple[MethodResult, ...]:
        return tuple(r for r in self.results if r.method == method)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _split(value: str) -> list[tuple[str, list[str]]]:
    """The `;`-separated parts, each with its comments taken out (nested parentheses and
    quoted strings respected)."""
    parts: list[tuple[str, list[str]]] = []
    text, comments, comment, depth, quoted, i = "", [], "", 0, False, 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and (quoted or depth) and i + 1 < len(value):
            pair = value[i : i + 2]
            if depth:
                comment += pair
            else:
                text += pair
            i += 2
            continue
        if depth:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if depth:
                comment += ch
            else:
                comments.append(comment.strip())
                comment = ""
                text += " "
        elif ch == '"':
            quoted = not quoted
            text += ch
        elif quoted:
            text += ch
        elif ch == "(":
            depth = 1
        elif ch == ";":
            parts.append((text.strip(), comments))
            text, comments = "", []
        else:
            text += ch
        i += 1
    if depth or quoted:
        raise AuthResultsError(value, UNCLOSED.format(what="comment" if depth else "quote"))
    parts.append((text.strip(), comments))
    return parts


def parse_authentication_results(value: str) -> AuthenticationResults:
    """The header value (unfolded or not) as an `AuthenticationResults`; `none` means no
    results (RFC 8601 2.2)."""
    parts = _split(" ".join(value.split()))
    authserv = parts[0][0].split()
    if not authserv or "=" in parts[0][0]:
        raise AuthResultsError(value, NO_AUTHSERV)
    results: list[MethodResult] = []
    for text, comments in parts[1:]:
        if not text or text.lower() == "none":
            continue
        pairs = _PAIR.findall(text)
        if not pairs or not _METHOD.fullmatch(pairs[0][0]) or not text.startswith(pairs[0][0]):
            raise AuthResultsError(value, NOT_RESINFO.format(part=text))
        (method, result), rest = pairs[0], pairs[1:]
        reason = next((_unquote(v) for k, v in rest if k.lower() == "reason"), None)
        properties = {k.lower(): _unquote(v) for k, v in rest if "." in k}
        results.append(
            MethodResult(
                method.split("/")[0].lower(), result.lower(), reason, properties, tuple(comments)
            )
        )
    return AuthenticationResults(authserv[0], tuple(results))
