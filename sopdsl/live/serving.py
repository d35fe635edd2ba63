"""One `sopdsl run` process serving: the runtime opened on its store (or Temporal), the service
started, signals wired (stop; SIGHUP reloads), and the exit code when it stops. `--workers N`
forks N of them on one port (`workers.py`). The command line itself is `command.py`."""

from __future__ import annotations

import dataclasses
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from sopdsl.errors import SopdslError, StoreError
from sopdsl.live.auth import Tokens, allowed_hosts
from sopdsl.live.redact import redact_text, redact_url, secrets_of
from sopdsl.live.reload import Reloader
from sopdsl.live.retention import TEMPORAL_DAYS
from sopdsl.live.service import TICK_EVERY, Service

if TYPE_CHECKING:
    from sopdsl.plan import Plan

# Seconds between loop turns of a worker sharing a store that cannot tell it of others' entries
# (a PostgreSQL store does: LISTEN/NOTIFY wakes the holder, and the loop keeps TICK_EVERY).
POLL_EVERY = 0.1

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Options:
    """The command's options one worker process needs, as given."""

    plan_paths: tuple[str, ...]
    root: str | None
    host: str
    port: int
    tokens: Tokens | None
    allowed_host: tuple[str, ...]
    use_stdin: bool
    dry_run: bool
    shard: str
    migrate: bool
    reload_plan: bool
    fronts: int = 0  # HTTP front processes (`fronts.py`)
    keep_days: float | None = None  # see `retention.py`


def supervised(
    plan: Plan,
    zone: ZoneInfo,
    executors: dict[str, Any],
    store: str,
    options: Options,
    worker: str | None,
    workers: int,
    concurrency: int,
) -> int:
    """`--workers N`: the store checked once here, then N forked worker processes on one port."""
    from sopdsl.live import workers as supervisor
    from sopdsl.live.runtime import open_store

    try:
        open_store(store, migrate=options.migrate).close()  # schema made or refused once, not N times
        reserved = supervisor.reserve(options.host, options.port)
    except StoreError as exc:
        click.echo(
            f"error: cannot open the store {redact_url(store)}: {redact_text(str(exc), secrets_of(store))}",
            err=True,
        )
        return EXIT_USAGE
    except OSError as exc:
        click.echo(f"error: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}", err=True)
        return EXIT_USAGE
    port = int(reserved.getsockname()[1])
    named = supervisor.names(worker or socket.gethostname(), workers)
    host = f"[{options.host}]" if ":" in options.host else options.host
    click.echo(
        f"sopdsl run: {workers} workers ({', '.join(named)}), store {redact_url(store)}, "
        f"listening on http://{host}:{port}",
        err=True,
    )
    one = dataclasses.replace(options, port=port)
    try:
        return supervisor.supervise(
            named,
            lambda name: serve_one(
                plan, zone, executors, store, None, one, name, concurrency, poll=True, reuse_port=True
            ),
            lambda line: click.echo(line, err=True),
        )
    finally:
        reserved.close()


def serve_one(
    plan: Plan,
    zone: ZoneInfo,
    executors: dict[str, Any],
    store: str | None,
    engine: str | None,
    options: Options,
    worker: str | None,
    concurrency: int,
    *,
    poll: bool,
    reuse_port: bool = False,
) -> int:
    """One service process: the runtime on its store (or Temporal), served until a stop; the exit code.

    `poll`: one of several workers on a PostgreSQL store, which look for each other's entries often."""
    from sopdsl.live.runtime import PlanChangedError, Runtime, open_store

    o = options
    host, port, shard, dry_run = o.host, o.port, o.shard, o.dry_run
    # With --engine the shard runs as a Temporal workflow: the "store" named below is the server.
    store = engine if engine is not None else store
    assert store is not None
    runtime: Runtime
    try:
        if engine is not None:
            keep_days = TEMPORAL_DAYS if o.keep_days is None else o.keep_days
            runtime = _temporal(
                plan, engine, executors, shard=shard, worker=worker, dry_run=dry_run, keep_days=keep_days
            )
        else:
            opened = open_store(store, migrate=o.migrate)
            runtime = Runtime(
                plan,
                opened,
                executors=executors,
                dry_run=dry_run,
                shard=shard,
                worker=worker,
                on_plan_change="reload" if o.reload_plan else "refuse",
                concurrency=concurrency,
                keep_days=o.keep_days,
            )
            if poll:
                # Its loop applies other workers' entries, which wait for its feeds: its executors
                # are kept busy by a thread of their own meanwhile.
                runtime.dispatch_apart(TICK_EVERY)
    except StoreError as exc:
        hint = "\nhint: back the store up, then start with --migrate" if "migrate" in str(exc) else ""
        reason = redact_text(str(exc), secrets_of(store))
        click.echo(f"error: cannot open the store {redact_url(store)}: {reason}{hint}", err=True)
        return EXIT_USAGE
    except PlanChangedError as exc:
        # The command line's own option (--reload), not the Python API's `on_plan_change`.
        click.echo(redact_text(exc.command_line(), secrets_of(store)), err=True)
        return EXIT_FOUND
    except SopdslError as exc:
        click.echo(f"error: {redact_text(str(exc), secrets_of(store))}", err=True)
        return EXIT_FOUND
    from sopdsl.live.wecom.settings import receivers

    service = Service(
        runtime,
        zone=zone,
        host=host,
        port=port,
        tokens=o.tokens,
        allowed_hosts=allowed_hosts(host, o.allowed_host),
        receivers=receivers(executors.values()),  # a WeCom callback, when the executors file has one
        reuse_port=reuse_port,
        fronts=o.fronts,
        # Entries other workers journal for shards this one holds wait for its next loop turn.
        tick_every=POLL_EVERY if poll else TICK_EVERY,
    )
    if poll and runtime.watch(service.wake_up):
        service.tick_every = TICK_EVERY  # woken at once by other workers' entries; this polls for the rest
    try:
        service.start()
    except OSError as exc:
        runtime.close()
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        return EXIT_USAGE

    mode = " (dry run)" if dry_run else ""
    if o.tokens is None:
        mode += " (no authentication: --insecure-no-auth)"
    named = f" as worker {worker}" if worker else ""
    click.echo(
        f"sopdsl run{named}: plan {plan.content_hash[:12]} ({len(plan.playbooks)} playbook(s)), store {redact_url(store)}{mode}, "
        f"listening on {service.url}",
        err=True,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        service.request_stop()

    reloader = Reloader(runtime, o.plan_paths, o.root)
    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGHUP"):
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda signum, frame: reloader.request())
    try:
        bad = _serve(service, o.use_stdin)
    finally:
        reloader.stop()
        service.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("sopdsl run: stopped", err=True)
    return EXIT_FOUND if bad else EXIT_OK


def _temporal(plan: Any, url: str, executors: Any, **options: Any) -> Any:
    """The runtime that forwards to Temporal workflows (`sopdsl.temporal.front`), with a worker."""
    try:
        from sopdsl.temporal.front import TemporalFront
    except ImportError as exc:
        raise click.UsageError(
            f"--engine temporal needs the extra: pip install 'sopdsl[temporal]' ({exc})"
        ) from None
    return TemporalFront(plan, url, executors=executors, **options)


def _serve(service: Service, use_stdin: bool) -> int:
    """Wait for a signal (or the end of stdin); how many stdin lines were rejected."""
    if not use_stdin:
        service.wait()
        return 0
    counted: list[int] = []

    def read_stdin() -> None:
        counted.append(service.feed_lines(sys.stdin))
        service.request_stop()

    reader = threading.Thread(target=read_stdin, name="sopdsl-stdin", daemon=True)
    reader.start()
    service.wait()
    reader.join(timeout=1)
    if counted:
        service.tick()  # at the end of input, what is already due runs before the process goes
    return sum(counted)
