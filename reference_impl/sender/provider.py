"""Provider settings (PROTOCOL.md section 1): the SMTP account a campaign is sent through.

A provider file is TOML holding one provider (keys at the top level) or several (`[[provider]]`
tables with unique nicknames). Loading checks every field and reports every problem at once, each
naming its field, so a user fixes a file in one pass. The callback URL is not a field: it is
read-only, taken from the receiver, and a file that tries to set it is refused.

Secrets stay out of files: `password_env` names an environment variable holding the password. It
is read when a session needs it, not when the file is loaded: a file holding several providers is
usable for the ones whose secret is at hand (`secret_problem` says what is missing, when it is).
A DKIM key is treated the same way: `dkim_key_env` is read when a message is signed, while a
`dkim_key_file` is read and checked at load, so a wrong path is a file problem naming the field.
The format and each decision are described in docs/sender.md.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reference_impl.errors import PlatformError
from reference_impl.protocol.links import LinkKey
from reference_impl.sender.address import address_problem
from reference_impl.sender.dkim import NO_KEY, key_problem, name_problem

__all__ = [
    "FIELDS",
    "PREFERENCE_CENTERS",
    "SCHEMES",
    "Provider",
    "ProviderError",
    "dump_providers",
    "load_providers",
    "parse_providers",
    "select_provider",
]

SCHEMES = ("smtp", "starttls", "smtps")
PREFERENCE_CENTERS = ("none", "clevertap", "custom")
URL_PLACEHOLDERS = ("email", "meta", "message_id", "sig")
# The vendor samples' account id; a file that sets none gets this one.
DEFAULT_ACCOUNT_ID = 1568798080
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 3600.0
MAX_URL_LENGTH = 256
FIELDS = (
    "nickname",
    "host",
    "port",
    "scheme",
    "username",
    "password",
    "password_env",
    "from_name",
    "from_address",
    "reply_address",
    "preference_center",
    "preference_center_url",
    "account_id",
    "timeout",
    "ca_file",
    "dkim_selector",
    "dkim_domain",
    "dkim_key_file",
    "dkim_key_env",
)
NO_SECRET = (
    "provider {nickname}: password_env names {env}, which is not set; export it before sending"
)

READ_ONLY = {
    "callback_url": "read-only: the callback URL is taken from the receiver; remove it",
}
_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class ProviderError(PlatformError, ValueError):
    """A provider file is unreadable or invalid; `problems` lists every (field, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        if len(problems) == 1:
            message = f"provider file {source}: {problems[0][0]}: {problems[0][1]}"
        else:
            lines = "\n".join(f"  {name}: {reason}" for name, reason in problems)
            message = (
                f"provider file {source} has {len(problems)} problems; fix each field:\n{lines}"
            )
        super().__init__(message)
        self.source = source
        self.problems = problems

    @property
    def fields(self) -> list[str]:
        return [name for name, _ in self.problems]


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's settings, already validated; build one with `parse_providers`."""

    nickname: str
    host: str
    port: int
    from_address: str
    scheme: str = "smtp"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_env: str | None = None
    from_name: str = ""
    reply_address: str | None = None
    preference_center: str = "none"
    preference_center_url: str | None = None
    account_id: int = DEFAULT_ACCOUNT_ID
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: str | None = None
    dkim_key_env: str | None = None
    # The key read from dkim_key_file when the file was loaded (checked then, so a typo in the
    # path is a provider-file problem, not a campaign of failures).
    dkim_key_pem: bytes | None = field(default=None, repr=False)
    # The receiver's key for signing preference links; a secret, so never in a provider file:
    # given by `--link-key`, `BOUNCEBACK_LINK_KEYS` or the code that builds the provider.
    link_key: LinkKey | None = field(default=None, repr=False)

    @property
    def reply_to(self) -> str:
        """Reply-To defaults to the from address: the message always says where replies go."""
        return self.reply_address or self.from_address

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password, read from the environment at the moment it is needed."""
        if self.password_env is not None:
            return (os.environ if environ is None else environ).get(self.password_env)
        return self.password

    def dkim_key(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """The PEM private key that signs: from the file, or the variable read at this moment."""
        if self.dkim_key_env is not None:
            value = (os.environ if environ is None else environ).get(self.dkim_key_env)
            return None if value is None else value.encode("utf-8")
        return self.dkim_key_pem

    def secret_problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Why this provider cannot send yet (its password or DKIM key variable is unset)."""
        if self.username is not None and self.secret(environ) is None:
            return NO_SECRET.format(nickname=self.nickname, env=self.password_env)
        if self.dkim_key_env is not None:
            pem = self.dkim_key(environ)
            if pem is None:
                return NO_KEY.format(nickname=self.nickname, env=self.dkim_key_env)
            if (problem := key_problem(pem)) is not None:
                return f"provider {self.nickname}: the key in {self.dkim_key_env} {problem}"
        return None

    def to_toml_table(self) -> dict[str, Any]:
        """The fields as a TOML table; unset fields and defaults are left out."""
        table: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None and not (name in _DEFAULTS and value == _DEFAULTS[name]):
                table[name] = value
        return table


_DEFAULTS: dict[str, Any] = {
    "scheme": "smtp",
    "from_name": "",
    "preference_center": "none",
    "account_id": DEFAULT_ACCOUNT_ID,
    "timeout": DEFAULT_TIMEOUT,
}


class _Checker:
    """Collects problems for one provider table; every accessor records instead of raising."""

    def __init__(self, table: dict[str, Any], prefix: str) -> None:
        self.table = table
        self.prefix = prefix
        self.problems: list[tuple[str, str]] = []

    def fail(self, name: str, reason: str) -> None:
        self.problems.append((self.prefix + name, reason))

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.table.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {value!r}")
            return None
        if required and not value.strip():
            self.fail(name, "must not be empty")
            return None
        return value


def _check_host(check: _Checker) -> str:
    host = check.text("host", required=True)
    if host is None:
        return ""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(host) or not all(
        _LABEL.fullmatch(label) for label in host.rstrip(".").split(".")
    ):
        check.fail("host", f"{host!r} is not a hostname or IP address")
    return host


def _check_int(check: _Checker, name: str, low: int, high: int, default: int | None) -> int:
    value = check.table.get(name, default)
    if value is None:
        check.fail(name, f"is required, an integer from {low} to {high}")
        return low
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        check.fail(name, f"must be an integer from {low} to {high}, got {value!r}")
        return low
    return value


def _check_address(check: _Checker, name: str, required: bool) -> str | None:
    value = check.text(name, required)
    if value is not None and value.strip():
        problem = address_problem(value)
        if problem is not None:
            check.fail(name, problem)
    return value


def _check_url(check: _Checker, center: str) -> str | None:
    url = check.text("preference_center_url")
    if center != "custom":
        if url is not None:
            check.fail(
                "preference_center_url",
                f"only used with preference_center = 'custom', which is {center!r}",
            )
        return url
    if url is None:
        check.fail("preference_center_url", "is required when preference_center = 'custom'")
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL_LENGTH:
        check.fail(
            "preference_center_url",
            f"must be an http(s) URL of at most {MAX_URL_LENGTH} characters, got {url!r}",
        )
    for name in _PLACEHOLDER.findall(url):
        if name not in URL_PLACEHOLDERS:
            check.fail(
                "preference_center_url",
                f"unknown placeholder {{{name}}}; use {', '.join(URL_PLACEHOLDERS)}",
            )
    return url


def _check_secret(check: _Checker, username: str | None) -> tuple[str | None, str | None]:
    password = check.text("password")
    env = check.text("password_env")
    if password is not None and env is not None:
        check.fail("password_env", "give password or password_env, not both")
    if env is not None and not _ENV_NAME.fullmatch(env):
        check.fail("password_env", f"{env!r} is not an environment variable name")
    if username is not None and password is None and env is None:
        check.fail("password", "username is set: give password or password_env")
    if username is None and (password is not None or env is not None):
        check.fail("username", "a password is set but no username to log in with")
    return password, env


def _check_timeout(check: _Checker) -> float:
    value = check.table.get("timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 < value <= MAX_TIMEOUT
    ):
        check.fail(
            "timeout", f"must be seconds, above 0 and at most {MAX_TIMEOUT:g}, got {value!r}"
        )
        return DEFAULT_TIMEOUT
    return float(value)


def _check_dkim(
    check: _Checker,
) -> tuple[str | None, str | None, str | None, str | None, bytes | None]:
    """All or nothing: a selector, a domain and one source of the key; a file is read now."""
    selector, domain = check.text("dkim_selector"), check.text("dkim_domain")
    path, env = check.text("dkim_key_file"), check.text("dkim_key_env")
    pem: bytes | None = None
    if all(v is None for v in (selector, domain, path, env)):
        return None, None, None, None, None
    for name, value in (("dkim_selector", selector), ("dkim_domain", domain)):
        if value is None:
            check.fail(name, "is required when signing with DKIM (a dkim_ field is set)")
        elif (problem := name_problem(value)) is not None:
            check.fail(name, problem)
    if path is not None and env is not None:
        check.fail("dkim_key_env", "give dkim_key_file or dkim_key_env, not both")
    elif path is None and env is None:
        check.fail("dkim_key_file", "signing with DKIM: give dkim_key_file or dkim_key_env")
    elif env is not None and not _ENV_NAME.fullmatch(env):
        check.fail("dkim_key_env", f"{env!r} is not an environment variable name")
    elif path is not None:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            check.fail("dkim_key_file", f"cannot read {path!r}: {exc.strerror}")
        else:
            if (problem := key_problem(pem)) is not None:
                check.fail("dkim_key_file", f"{path!r} {problem}")
    return selector, domain, path, env, pem


def _check_keys(check: _Checker) -> None:
    for name in check.table:
        if name in READ_ONLY:
            check.fail(name, READ_ONLY[name])
        elif name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            check.fail(name, f"unknown field{hint} (fields: {', '.join(FIELDS)})")


def _check_one(table: Any, prefix: str) -> tuple[Provider | None, list]:
    if not isinstance(table, dict):
        return None, [(prefix.rstrip("."), "must be a table of provider fields")]
    check = _Checker(table, prefix)
    _check_keys(check)
    nickname = check.text("nickname", required=True) or ""
    host = _check_host(check)
    port = _check_int(check, "port", 1, 65535, None)
    scheme = check.text("scheme") or "smtp"
    if scheme not in SCHEMES:
        check.fail("scheme", f"must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    username = check.text("username")
    if username is not None and not username:
        check.fail("username", "must not be empty; leave it out to send without AUTH")
    password, env = _check_secret(check, username)
    from_name = check.text("from_name") or ""
    if any(ch in from_name for ch in "\r\n"):
        check.fail("from_name", "must be one line")
    from_address = _check_address(check, "from_address", required=True) or ""
    reply_address = _check_address(check, "reply_address", required=False)
    center = check.text("preference_center") or "none"
    if center not in PREFERENCE_CENTERS:
        check.fail(
            "preference_center", f"must be one of {', '.join(PREFERENCE_CENTERS)}, got {center!r}"
        )
    url = _check_url(check, center)
    account_id = _check_int(check, "account_id", 0, 2**63 - 1, DEFAULT_ACCOUNT_ID)
    timeout = _check_timeout(check)
    ca_file = check.text("ca_file")
    selector, domain, key_file, key_env, pem = _check_dkim(check)
    if check.problems:
        return None, check.problems
    provider = Provider(
        nickname=nickname,
        host=host,
        port=port,
        from_address=from_address,
        scheme=scheme,
        username=username,
        password=password,
        password_env=env,
        from_name=from_name,
        reply_address=reply_address,
        preference_center=center,
        preference_center_url=url,
        account_id=account_id,
        timeout=timeout,
        ca_file=ca_file,
        dkim_selector=selector,
        dkim_domain=domain,
        dkim_key_file=key_file,
        dkim_key_env=key_env,
        dkim_key_pem=pem,
    )
    return provider, []


def parse_providers(data: Mapping[str, Any], source: str) -> list[Provider]:
    """Validate a parsed provider file: one provider at the top level, or `[[provider]]`."""
    problems: list[tuple[str, str]] = []
    providers: list[Provider] = []
    if "provider" in data:
        tables = data["provider"]
        others = [name for name in data if name != "provider"]
        for name in others:
            problems.append((name, "with [[provider]] tables, every field goes inside a table"))
        if not isinstance(tables, list) or not tables:
            problems.append(("provider", "must be one or more [[provider]] tables"))
            tables = []
        entries = [(table, f"provider[{i}].") for i, table in enumerate(tables)]
    else:
        entries = [(dict(data), "")]
    for table, prefix in entries:
        provider, found = _check_one(table, prefix)
        problems.extend(found)
        if provider is not None:
            providers.append(provider)
    seen: dict[str, str] = {}
    for table, prefix in entries:
        nickname = table.get("nickname") if isinstance(table, dict) else None
        if isinstance(nickname, str) and nickname:
            if nickname in seen:
                problems.append(
                    (prefix + "nickname", f"{nickname!r} is already used by {seen[nickname]}")
                )
            else:
                seen[nickname] = prefix.rstrip(".") or "the file"
    if problems:
        raise ProviderError(source, problems)
    return providers


def load_providers(path: str | Path) -> list[Provider]:
    """Read and validate a provider file; `ProviderError` lists every problem of every provider."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ProviderError(source, [("(file)", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ProviderError(source, [("(file)", "is not UTF-8")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProviderError(source, [("(file)", f"is not valid TOML: {exc}")]) from exc
    return parse_providers(data, source)


def select_provider(providers: list[Provider], nickname: str | None, source: str) -> Provider:
    """The provider to use: the one named, or the only one in the file."""
    names = ", ".join(p.nickname for p in providers)
    if nickname is None:
        if len(providers) == 1:
            return providers[0]
        raise ProviderError(
            source, [("nickname", f"the file has several providers ({names}); pick one")]
        )
    for provider in providers:
        if provider.nickname == nickname:
            return provider
    raise ProviderError(source, [("nickname", f"no provider {nickname!r}; the file has {names}")])


def dump_providers(providers: list[Provider]) -> dict[str, Any]:
    """The TOML document for `providers` (top-level for one, `[[provider]]` for several)."""
    if len(providers) == 1:
        return providers[0].to_toml_table()
    return {"provider": [p.to_toml_table() for p in providers]}
