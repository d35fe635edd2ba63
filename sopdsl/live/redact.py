"""Redaction: URLs, DSNs and error messages with their credentials replaced by `***`.

Input: a store or webhook URL (`postgresql://u:pw@host/db`, `https://u:pw@bot/hook?token=...`),
a libpq keyword DSN (`host=db password=pw`), or a message that may quote them (an exception from
psycopg or urllib, a receiver's answer). Output: the same text with every password and every
secret-looking parameter's value replaced by `***`, for logs, error messages, `/health` and the
outbox's `error` column. The one place that decides what is secret: every site that prints or
stores a URL or an error goes through it. The user name, host, port, path and other parameters
are kept, so a message still says which store or endpoint it is about.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"

# Parameter names whose values are secret, compared in lower case with `-` read as `_`: the whole
# name (`key`, `sig`), or a part of it (`access_token`, `sslpassword`, `x_api_key`).
_EXACT = frozenset({"key", "sig", "pwd", "pass", "auth", "jwt", "hmac", "otp"})
_PARTS = (
    "token",
    "secret",
    "passw",
    "passphrase",
    "signature",
    "credential",
    "apikey",
    "api_key",
    "auth",
    "session",
    "private",
)
_SUFFIXES = ("_key", "_sig", "_pwd")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# `scheme://user:password@` anywhere in a text; the password runs to the last `@` of the authority.
_USERINFO = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*):(?P<password>[^\s/?#]*)@"
)
# `name=value` in a query string, a fragment, a DSN or a message: the value quoted or up to a
# separator. Names are checked with `is_secret_name`, so `kind=send` is left alone.
_PAIR = re.compile(
    r"""(?P<name>(?<![\w.\-])[A-Za-z_][\w.\-]*)(?P<eq>\s*=\s*)"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&#;'"]*)"""
)
_DSN = re.compile(r"\s*[A-Za-z_]\w*\s*=")
_MIN_LITERAL = 4  # shorter known secrets are masked only where a URL or DSN names them


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or DSN keyword of this name carries a secret (`token`, `password`, ...)."""
    plain = urllib.parse.unquote_plus(name).strip().lower().replace("-", "_")
    return plain in _EXACT or any(part in plain for part in _PARTS) or plain.endswith(_SUFFIXES)


def redact_url(url: str) -> str:
    """The URL (or libpq DSN) with its password and secret parameters' values replaced by `***`.

    `postgresql://u:pw@host/db?sslpassword=x` gives `postgresql://u:***@host/db?sslpassword=***`;
    `host=db password='p w'` gives `host=db password=***`. Works on URLs without a scheme
    (`u:pw@host/db`), with IPv6 hosts and percent-encoded passwords; never raises.
    """
    text = str(url)
    scheme = _SCHEME.match(text)
    if scheme is None and _DSN.match(text):
        return _redact_pairs(text)  # a keyword DSN (`host=db password=pw`), or a bare query
    start = scheme.end() if scheme else (2 if text.startswith("//") else 0)
    rest = text[start:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:{MASK}@{hostport}"
    path, mark, after = _split_query(tail)
    # Then as any text: a password or parameter the parse above missed is masked all the same.
    return redact_urls_in(text[:start] + authority + path + (mark + after if mark else ""))


def redact_urls_in(text: str) -> str:
    """A message with every password of a URL (`scheme://u:pw@`) and every secret `name=value` masked."""
    masked = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", str(text))
    return _redact_pairs(masked)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """A message with the given secrets (as written, or percent-encoded) and URL credentials masked.

    For errors that quote a secret out of its URL: a DSN echoed by a driver, a token in a
    receiver's answer. Secrets shorter than four characters are masked only inside URLs.
    """
    result = str(text)
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update((secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)))
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= _MIN_LITERAL:
            result = result.replace(form, MASK)
    return redact_urls_in(result)


def secrets_of(url: str) -> list[str]:
    """The secret values a URL or DSN carries (its password, its secret parameters), raw and decoded."""
    text = str(url)
    anchored = text if _SCHEME.match(text) else "x:" + text if text.startswith("//") else "x://" + text
    found = [match.group("password") for match in _USERINFO.finditer(anchored)]
    for match in _PAIR.finditer(text):
        if is_secret_name(match.group("name")):
            value = match.group("value")
            if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) >= 2:
                value = value[1:-1]
            found.append(value)
    decoded = [urllib.parse.unquote(s) for s in found] + [urllib.parse.unquote_plus(s) for s in found]
    return [s for s in dict.fromkeys(found + decoded) if s and s != MASK]


class RedactingFormatter(logging.Formatter):
    """A log formatter that masks URL credentials and secret parameters in each record, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as the base formatter writes it, then through `redact_urls_in`."""
        return redact_urls_in(super().format(record))


def _split_query(tail: str) -> tuple[str, str, str]:
    """A URL's path, then the first `?` or `#` and everything after it (query and fragment)."""
    cut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return tail, "", ""
    return tail[:cut], tail[cut], tail[cut + 1 :]


def _redact_pairs(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if not is_secret_name(match.group("name")) or not match.group("value"):
            return match.group(0)
        return f"{match.group('name')}{match.group('eq')}{MASK}"

    return _PAIR.sub(mask, text)
