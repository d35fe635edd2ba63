"""A WeCom bot skeleton: WeCom's callbacks in, the corpus's welcome (J1) out through the WeCom API.

It runs the service of `sopdsl run` in one process: the callback receiver at /wecom/callback
(customer-group members joining become `join` events), the J1 playbook (入群欢迎仪式: a new
member of a group tagged "normal" is greeted in the group), and the WeCom executor of
`executors.yaml` beside it (a group greeting is a mass send from the group's owner, which they
confirm in WeCom). See README.md beside it.

    WECOM_CORPID=... WECOM_SECRET=... WECOM_CALLBACK_TOKEN=... WECOM_CALLBACK_AES_KEY=... \\
      python examples/wecom_bot/bot.py --group wrOgQhDgAA...=骑友交流1群 --port 8080
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import sopdsl
from sopdsl.live.auth import AuthConfigError, Tokens, allowed_hosts, is_loopback, load_tokens
from sopdsl.live.clock import Clock
from sopdsl.live.executors_config import ExecutorConfigError, load_executors
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.wecom.settings import receivers
from sopdsl.plan import timeutil

HERE = Path(__file__).resolve().parent
J1 = HERE.parent.parent / "playbooks" / "J1_welcome_ritual.sop"


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="A WeCom bot running the J1 welcome.")
    parser.add_argument("--executors", default=str(HERE / "executors.yaml"), help="the executors file")
    parser.add_argument("--store", default="memory://", help="memory:// (default) or sqlite:///bot.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host: the name WeCom calls, if your proxy passes it on; repeatable",
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="CHAT_ID=NAME",
        help="a customer group to welcome in (tagged normal, as J1 asks); repeatable",
    )
    return parser.parse_args(argv)


def make_service(args: argparse.Namespace, clock: Clock | None = None) -> Service:
    """The service: J1 compiled, the executors file read, the groups registered, the callback mounted."""
    tokens = check_tokens(args.host)
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(J1)))
    zone = timeutil.zone(plan.declarations.timezone)
    executors = load_executors(args.executors, zone=zone, actions=plan.declarations.actions)
    runtime = Runtime(plan, args.store, executors=executors, clock=clock)
    for given in args.group:
        chat, _, name = given.partition("=")
        runtime.add_group(chat, name=name or chat, tags=["normal"])
    return Service(
        runtime,
        zone=zone,
        host=args.host,
        port=args.port,
        receivers=receivers(executors.values()),
        tokens=tokens,
        # As `sopdsl run`: on loopback only loopback names, so a DNS-rebinding web page is refused.
        allowed_hosts=allowed_hosts(args.host, tuple(args.allowed_host)),
    )


def check_tokens(host: str) -> Tokens | None:
    """The bearer tokens of `$SOPDSL_TOKENS` for the endpoints but the callback (WeCom's requests
    are checked by their signature); without them, only on loopback. Raise `AuthConfigError`."""
    tokens = load_tokens(None)
    if tokens is None and not is_loopback(host):
        raise AuthConfigError(
            f"error: --host {host} without tokens would let anyone who reaches it post events and use "
            "the admin API: set $SOPDSL_TOKENS (lines `TOKEN SHARD`, as for sopdsl run), or listen on "
            "127.0.0.1 behind your HTTPS proxy"
        )
    return tokens


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C (or SIGTERM)."""
    args = options(argv)
    try:
        service = make_service(args)
    except ExecutorConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except AuthConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    service.start()
    print(f"wecom bot: listening on {service.url}, callback at {service.url}/wecom/callback", file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: service.request_stop())
    service.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
