"""Reading the service's playbooks into a plan: at start, and again on SIGHUP (`sopdsl run`).

Input: the paths `sopdsl run` was given (one compiled plan.json, or .sop files and folders).
Output: a `Build` (the plan, or none, with its diagnostics) for the caller to report; on SIGHUP,
the runtime switched to the new version, or the running version kept and the reason shown.
Nothing here exits the process: only the command (`command.py`) turns an outcome into an exit
code, and a reload never stops the service.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sopdsl.build import Build, PathError, build_paths, rendered
from sopdsl.errors import SopdslError
from sopdsl.live.executors_config import refusals
from sopdsl.live.redact import redact_urls_in
from sopdsl.plan import loads as load_plan

if TYPE_CHECKING:
    from sopdsl.live.runtime import Runtime


def read_plan(paths: tuple[str, ...], root: str | None = None) -> Build:
    """A compiled plan.json, or playbook files checked and compiled (`root`: the project folder their
    includes stay in); the plan is None when they have errors. Raises `PathError` for paths that
    cannot be read or hold no playbook, `PlanError` for a plan.json that is not a valid plan."""
    if len(paths) == 1 and paths[0].endswith(".json"):
        path = Path(paths[0])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PathError(f"cannot read {path}: {exc}") from None
        return Build(load_plan(text), [], {})
    return build_paths(paths, Path(root) if root is not None else None)


def report(build: Build) -> None:
    """Print a build's diagnostics on stderr: its errors, when there is no plan; else the plan
    analysis's warnings. Not stdout, which carries only the `log` executor's JSON lines."""
    if build.plan is None:
        click.echo(rendered(build.located()), nl=False, err=True)
    elif build.analysis:
        warnings = [(d, build.sources.get(d.span.path)) for d in build.analysis]
        click.echo(rendered(warnings), nl=False, err=True)


def reload_playbooks(runtime: Runtime, plan_paths: tuple[str, ...], root: str | None = None) -> None:
    """Read the playbooks again and switch the runtime to them; on any error keep the running
    version and say why, after the playbooks' own diagnostics (all on stderr)."""
    before = runtime.plan.content_hash
    running = f"still running plan {before[:12]}"
    try:
        build = read_plan(plan_paths, root)
        report(build)
        if build.plan is None:
            click.echo(
                f"sopdsl run: reload refused ({running}): fix the errors above, then send SIGHUP again",
                err=True,
            )
            return
        refused = refusals(runtime.executors, build.plan)
        if refused:
            click.echo(f"sopdsl run: reload refused ({running}): {'; '.join(refused)}", err=True)
            return
        changes = runtime.reload(build.plan)
    except SopdslError as exc:
        click.echo(f"sopdsl run: reload refused ({running}): {redact_urls_in(str(exc))}", err=True)
        return
    except Exception as exc:  # a store gone away, say: the service goes on with what it runs
        reason = redact_urls_in(f"{type(exc).__name__}: {exc}")
        click.echo(f"sopdsl run: reload failed ({running}): {reason}", err=True)
        return
    if runtime.plan.content_hash == before:
        click.echo(f"sopdsl run: the playbooks are unchanged; {running}", err=True)
        return
    moved = f", {len(changes)} flow(s) in progress decided (see the log)" if changes else ""
    click.echo(f"sopdsl run: now running plan {runtime.plan.content_hash[:12]}{moved}", err=True)
    missing = runtime.missing_executors()
    if missing:
        click.echo(f"sopdsl run: warning: no executor for {', '.join(missing)}", err=True)


class Reloader:
    """Reads the playbooks again on SIGHUP, in a thread (compiling takes a while), one reload at a
    time, so the last signal's files win."""

    def __init__(self, runtime: Runtime, plan_paths: tuple[str, ...], root: str | None = None) -> None:
        self.runtime = runtime
        self.plan_paths = plan_paths
        self.root = root
        self._one = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def request(self) -> None:
        """Start a reload (from the signal handler: it only starts a thread)."""
        thread = threading.Thread(target=self._run, name="sopdsl-reload", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Let a reload in progress finish, and start no more."""
        self._stopped = True
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        with self._one:
            if not self._stopped:
                reload_playbooks(self.runtime, self.plan_paths, self.root)
