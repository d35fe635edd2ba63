"""The `sopdsl run` command: options in, a running service, an exit code out.

Input: the command line (plan or playbook paths, the store URL, the executors file, ...), then
signals: SIGINT and SIGTERM stop the service, SIGHUP reloads the playbooks (`reload.py`). Output:
the service (`service.py`) running until stopped, messages on stderr, and the exit code: 0
stopped normally; 1 the plan or the executor file has errors, or with `--stdin` some lines were
rejected; 2 a usage error. `run_command` is the only place that turns an outcome into an exit
code; everything below it returns or raises. One process serving is `serving.py`.
"""

from __future__ import annotations

import logging
import signal
import sys

import click

from sopdsl.build import PathError
from sopdsl.errors import PlanError
from sopdsl.live.auth import AuthConfigError, check_listen, load_tokens
from sopdsl.live.executors_config import ExecutorConfigError, default_executors, load_executors
from sopdsl.live.redact import RedactingFormatter
from sopdsl.live.reload import read_plan, report
from sopdsl.live.serving import EXIT_FOUND, EXIT_USAGE, Options, serve_one, supervised
from sopdsl.plan import timeutil


def _shard_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """`--shard` as `POST /events?shard=` takes it: letters, digits and _ . : - (at most 64)."""
    from sopdsl.live.app import SHARD_NAME

    if not SHARD_NAME.fullmatch(value):
        raise click.BadParameter(
            f"'{value}' is not a shard name: letters, digits and _ . : -, starting with a letter or "
            "a digit, at most 64 (as POST /events?shard= takes it)"
        )
    return value


@click.command(name="run")
@click.argument("plan_paths", metavar="PLAN...", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--store", default=None, help="sqlite:///state.db, postgresql://..., or memory.")
@click.option(
    "--engine",
    default=None,
    help="temporal://host:port/namespace: run the shard as a Temporal workflow instead of on a store "
    "(this process also runs a worker; needs sopdsl[temporal]).",
)
@click.option(
    "--executors",
    "executors_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Executor configuration (YAML or TOML); without it every action is printed as a JSON line.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Bearer tokens, one `TOKEN SHARD[,SHARD...]` a line (default: $SOPDSL_TOKENS).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Take requests without a token; only on a loopback address, for trying things out.",
)
@click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    help="Also answer to this Host header (a name the service is reached by); repeatable.",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--stdin",
    "use_stdin",
    is_flag=True,
    help="Also read one JSON event per line from stdin; stop at its end.",
)
@click.option("--dry-run", is_flag=True, help="Decide everything, but only log what executors would do.")
@click.option(
    "--shard",
    default="default",
    show_default=True,
    callback=_shard_name,
    help="The community (shard) this process serves: letters, digits and _ . : - (at most 64).",
)
@click.option("--worker", default=None, help="This worker's name, when several share a PostgreSQL store.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port and a PostgreSQL store (named WORKER-1 ... WORKER-N).",
)
@click.option(
    "--fronts",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="HTTP front processes that read requests for this one, which keeps the store (one core "
    "more for HTTP; answers unchanged).",
)
@click.option(
    "--executor-concurrency",
    "concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Executor calls each worker makes at once (one member's actions still go in order).",
)
@click.option(
    "--keep-days",
    "keep_days",
    default=None,
    type=click.FloatRange(min=1),
    help="Purge finished actions and the figures' per-member rows older than this, once a day "
    "(default: keep them; with --engine temporal, 30, which a shard's state needs to stay small).",
)
@click.option(
    "--migrate", is_flag=True, help="Upgrade a store at an older schema version (back it up first)."
)
@click.option(
    "--reload",
    "reload_plan",
    is_flag=True,
    help="If the store runs another version of these playbooks, switch it to this one "
    "(members mid-flow finish or move as each playbook's `on change` says).",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Project folder: includes and `file` templates may only name files inside it "
    "(default: the folder of each file given, or the folder given).",
)
def run_command(
    plan_paths: tuple[str, ...],
    store: str | None,
    engine: str | None,
    executors_file: str | None,
    host: str,
    tokens_file: str | None,
    insecure_no_auth: bool,
    allowed_host: tuple[str, ...],
    port: int,
    use_stdin: bool,
    dry_run: bool,
    shard: str,
    worker: str | None,
    workers: int,
    fronts: int,
    concurrency: int,
    keep_days: float | None,
    migrate: bool,
    reload_plan: bool,
    root: str | None,
) -> None:
    """Run playbooks live: events over HTTP (POST /events) and stdin, timers, executors, /health, /metrics.

    SIGHUP reads the playbooks again and switches to them, as --reload does at start.
    """
    # Until the service runs, a SIGHUP (a deploy script reloading early) is ignored, not fatal.
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN) if hasattr(signal, "SIGHUP") else None
    try:
        code = run(
            plan_paths,
            store,
            engine=engine,
            executors_file=executors_file,
            host=host,
            port=port,
            tokens_file=tokens_file,
            insecure_no_auth=insecure_no_auth,
            allowed_host=allowed_host,
            use_stdin=use_stdin,
            dry_run=dry_run,
            shard=shard,
            worker=worker,
            workers=workers,
            fronts=fronts,
            concurrency=concurrency,
            keep_days=keep_days,
            migrate=migrate,
            reload_plan=reload_plan,
            root=root,
        )
    finally:
        if hangup is not None:
            signal.signal(signal.SIGHUP, hangup)
    raise SystemExit(code)  # the edge: the outcome becomes the process's exit code


def run(
    plan_paths: tuple[str, ...],
    store: str | None,
    *,
    engine: str | None = None,
    executors_file: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens_file: str | None = None,
    insecure_no_auth: bool = False,
    allowed_host: tuple[str, ...] = (),
    use_stdin: bool = False,
    dry_run: bool = False,
    shard: str = "default",
    worker: str | None = None,
    workers: int = 1,
    fronts: int = 0,
    concurrency: int = 1,
    keep_days: float | None = None,
    migrate: bool = False,
    reload_plan: bool = False,
    root: str | None = None,
) -> int:
    """`sopdsl run` without the exit: start the service, serve until a stop, return the exit code.

    Raises `click.UsageError` for paths that give nothing to run."""
    if (store is None) == (engine is None):
        raise click.UsageError("give either --store URL or --engine temporal://host:port/namespace")
    if workers > 1 and not (store or "").startswith(("postgresql://", "postgres://")):
        raise click.UsageError("--workers needs a PostgreSQL store (--store postgresql://...)")
    if workers > 1 and use_stdin:
        raise click.UsageError("--stdin reads events in one process: it cannot go with --workers")
    if workers > 1 and fronts:
        raise click.UsageError("--fronts serves one store process: it cannot go with --workers")
    try:
        tokens = load_tokens(tokens_file)
        check_listen(host, tokens, insecure_no_auth)
    except AuthConfigError as exc:
        click.echo(str(exc), err=True)
        return EXIT_USAGE
    try:
        build = read_plan(plan_paths, root)
    except PlanError as exc:
        click.echo(f"error: {plan_paths[0]}: {exc}", err=True)
        return EXIT_FOUND
    except PathError as exc:
        raise click.UsageError(str(exc)) from None
    report(build)
    if build.plan is None:
        return EXIT_FOUND
    plan = build.plan
    # The runtime reports retries, parked actions and dry-run decisions through logging.
    # Masked as a last line of defence: a record quoting a URL's password shows `***`.
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[to_stderr])
    zone = timeutil.zone(plan.declarations.timezone)
    try:
        executors = (
            load_executors(executors_file, zone=zone, actions=plan.declarations.actions, plan=plan)
            if executors_file
            else default_executors(zone)
        )
    except ExecutorConfigError as exc:
        click.echo(str(exc), err=True)
        return EXIT_FOUND
    options = Options(
        plan_paths,
        root,
        host,
        port,
        tokens,
        allowed_host,
        use_stdin,
        dry_run,
        shard,
        migrate,
        reload_plan,
        fronts,
        keep_days,
    )
    if workers > 1:
        assert store is not None
        return supervised(plan, zone, executors, store, options, worker, workers, concurrency)
    poll = worker is not None and store is not None and store.startswith(("postgresql:", "postgres:"))
    return serve_one(plan, zone, executors, store, engine, options, worker, concurrency, poll=poll)
