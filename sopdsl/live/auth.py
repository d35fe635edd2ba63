"""Who may talk to the service: bearer tokens, each allowed a set of shards, and where it may listen.

Input: a tokens file (`--tokens FILE`) or the `SOPDSL_TOKENS` environment variable, each
non-blank line `TOKEN SHARD[,SHARD...]` (`*` for every shard; `#` starts a comment), and the
address `sopdsl run` is asked to listen on. Output: a `Tokens` table that checks an
`Authorization: Bearer ...` header in constant time, or a located `AuthConfigError`; and
`check_listen`, which refuses to run without authentication anywhere but on loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sopdsl.errors import SopdslError

TOKENS_ENV = "SOPDSL_TOKENS"
MIN_TOKEN_LENGTH = 16  # characters: a short token can be guessed over the network
ALL_SHARDS = "*"


class AuthConfigError(SopdslError):
    """The tokens are malformed, or the service would listen beyond loopback without authentication."""


@dataclass(frozen=True)
class Grant:
    """One token and the shards it may reach (`*`: all)."""

    token: str
    shards: frozenset[str]
    where: str  # `tokens.txt:3`, for messages: never the token itself

    def allows(self, shard: str) -> bool:
        """Whether this token may reach `shard`."""
        return ALL_SHARDS in self.shards or shard in self.shards


class Tokens:
    """The bearer tokens the service accepts; `check` finds the grant of an Authorization header."""

    def __init__(self, grants: list[Grant]) -> None:
        self.grants = grants

    def check(self, header: str | None) -> Grant | None:
        """The grant whose token the header carries, or None; every token is compared, in constant time."""
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        offered = given.strip().encode("utf-8")
        found = None
        for grant in self.grants:
            # No early exit: the time taken does not tell which token was close.
            if hmac.compare_digest(offered, grant.token.encode("utf-8")):
                found = grant
        return found


def parse_tokens(text: str, name: str) -> Tokens:
    """Tokens from the text of a tokens file (or the environment variable); raise `AuthConfigError`, located by line."""
    grants: list[Grant] = []
    problems: list[str] = []
    for number, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{name}:{number}"
        if len(words) > 2 and words[1].endswith(","):
            # `TOKEN default, shop2`: a space after a comma splits the shards into words.
            problems.append(
                f"{where}: error: shards are separated by commas without spaces: "
                f"`{words[0][:4]}… {''.join(words[1:])}`"
            )
            continue
        if len(words) != 2:
            problems.append(f"{where}: error: expected `TOKEN SHARD[,SHARD...]` (`*` for every shard)")
            continue
        token, shards = words
        if len(token) < MIN_TOKEN_LENGTH:
            problems.append(
                f"{where}: error: a token must be at least {MIN_TOKEN_LENGTH} characters "
                "(try `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
            continue
        if any(g.token == token for g in grants):
            problems.append(f"{where}: error: this token is already given on an earlier line")
            continue
        allowed = frozenset(s for s in shards.split(",") if s)
        if not allowed:
            problems.append(f"{where}: error: no shard named")
            continue
        grants.append(Grant(token, allowed, where))
    if problems:
        raise AuthConfigError("\n".join(problems))
    if not grants:
        raise AuthConfigError(f"{name}: error: no tokens in it")
    return Tokens(grants)


def load_tokens(path: str | None, environ: Mapping[str, str] | None = None) -> Tokens | None:
    """The tokens of `path`, else of `SOPDSL_TOKENS`, else None; raise `AuthConfigError` if they are unreadable or malformed."""
    env = os.environ if environ is None else environ
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthConfigError(f"error: cannot read the tokens file {path}: {exc}") from None
        return parse_tokens(text, path)
    if env.get(TOKENS_ENV, "").strip():
        return parse_tokens(env[TOKENS_ENV], f"${TOKENS_ENV}")
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(host: str, tokens: Tokens | None, insecure_no_auth: bool) -> None:
    """Refuse a service nobody could use safely: no tokens without --insecure-no-auth, and that only on loopback."""
    if insecure_no_auth and not is_loopback(host):
        raise AuthConfigError(
            f"error: --insecure-no-auth is only allowed on a loopback address (127.0.0.1, ::1), not {host}: "
            f"anyone who reaches {host} could post events; give tokens with --tokens FILE or ${TOKENS_ENV}"
        )
    if tokens is None and not insecure_no_auth:
        raise AuthConfigError(
            f"error: no tokens: give --tokens FILE or set ${TOKENS_ENV} (lines `TOKEN SHARD[,SHARD...]`), "
            "or, for trying it out on this machine only, --insecure-no-auth"
        )


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The `Host` header values to accept: on loopback only loopback names, so a DNS-rebinding page is refused."""
    if is_loopback(host):
        return ["127.0.0.1", "localhost", "::1", "[::1]", *extra]
    if extra:
        return [host, *extra]
    if host in ("0.0.0.0", "::", ""):
        return ["*"]  # any name the machine is reached by; the tokens guard it
    return [host]
