"""The sharded dry run: a JSONL timeline's members split across processes, their logs merged.

Input: a `Plan`, a JSONL timeline's path, how to write an action, and how many processes. Output:
the action log, written byte for byte as one process writes it. Each process (a fork) reads the
file (`shard_read`: its own members' lines in full, every line checked in full by its own shard;
of every Nth block it decodes every line's keys first, and writes each shard its lines of it,
`shard_exchange`; a block another shard routes is not read at all) and feeds the engine its own
members' events only (`shard_of`: CRC-32 of the member id, stable across runs and machines). Each
process writes its log step by step with the step's place in the engine's order, and the parent
merges the steps by it (`shard_steps`):

- an event: (time, 0, its number among the events fed), the number the engine keys flows on
  (`#N`), set to the whole timeline's count;
- a timer: (due, 1, playbook, member, group, creation order), the engine's own same-instant
  order; timers of one member are all in one shard, so the creation order of the shard ranks
  them as one process does. Timers of a group (member "") run alike in every shard, since the
  plans allowed read no member in them: shard 0's are kept, and the others' must be equal.

Events are fed in time order and a timer due at an event's instant runs after it, so these keys
sort the steps of all shards as one engine runs them. `shard_plan.one_shard_reason` says which
plans must run in one process; the timeline can say so too, as it is read (an event without a
member, a group met only mid-run where calendars run per group): then, or when a line has a
mistake, the run is made again in one process, and what it prints is what one process prints.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any

from sopdsl.allocator import keep_freed_memory
from sopdsl.dryrun.history import History, as_listed
from sopdsl.dryrun.shard_exchange import Counters, Exchange
from sopdsl.dryrun.shard_plan import one_shard_reason
from sopdsl.dryrun.shard_read import Members, Owners, Part, named_groups, route_blocks, shard_blocks
from sopdsl.dryrun.shard_steps import Stepper, Steps, UnshardableError, batches, merged
from sopdsl.dryrun.simulate import simulate_timeline
from sopdsl.dryrun.timeline import Timeline, open_timeline
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.records import MemberRecord
from sopdsl.errors import FixtureError
from sopdsl.gcpause import kept_gc, paused_gc
from sopdsl.plan import Plan

Writer = Callable[[IO[bytes]], Callable[[Action], None]]  # an output -> what writes an action to it


@dataclass
class ShardRun:
    """How a dry run ran: the processes it used, and why one when more were asked."""

    jobs: int
    reason: str | None = None
    shards: list[dict[str, Any]] = field(default_factory=list)  # each process's counts and peak memory


def simulate_sharded(
    plan: Plan,
    path: Path,
    shown: str,
    default_zone: str,
    writer: Writer,
    out: IO[bytes],
    jobs: int,
    progress: Callable[[int], None] | None = None,
) -> ShardRun:
    """Dry-run a JSONL timeline in `jobs` processes (one when the plan or the timeline needs it,
    saying why), writing the log to `out` as one process would. Raises `FixtureError` as
    `simulate_timeline` does."""
    reason = one_shard_reason(plan) if jobs > 1 else None
    if reason is None and jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        reason = "this system cannot fork processes"
    run = ShardRun(jobs=1, reason=reason)
    if reason is None and jobs > 1:
        try:
            run.shards = _run_shards(plan, path, shown, default_zone, writer, out, jobs, progress)
            run.jobs = jobs
            return run
        except UnshardableError as exc:
            run.reason = str(exc)
    timeline = open_timeline(path, shown, default_zone)
    try:
        simulate_timeline(plan, timeline, writer(out), progress)
    finally:
        timeline.close()
    return run


def _run_shards(
    plan: Plan,
    path: Path,
    shown: str,
    zone: str,
    writer: Writer,
    out: IO[bytes],
    jobs: int,
    progress: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """Run the shards, then merge their steps into `out`; raise `UnshardableError` to run in one."""
    context = multiprocessing.get_context("fork")
    # A fork copies what is buffered, and the child would write it again at its exit.
    out.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    read = Counters(1)  # shard 0's bytes read, for the progress bar
    done = Counters(jobs)  # each shard's count of blocks routed (shard_exchange)
    with tempfile.TemporaryDirectory(prefix="sopdsl-shards-") as folder:
        files = [Path(folder) / f"{k}.steps" for k in range(jobs)]
        routes = Path(folder) / "routes"
        routes.mkdir()
        workers: list[Any] = []
        pipes: dict[Connection, int] = {}
        try:
            for k in range(jobs):
                receiver, sender = context.Pipe(duplex=False)
                pipes[receiver] = k
                own = (files[k], sender, read if k == 0 else None, Exchange(routes, k, jobs, done))
                worker = context.Process(
                    target=_shard_main, args=(plan, path, shown, zone, writer, k, jobs, *own), daemon=True
                )
                worker.start()
                sender.close()
                workers.append(worker)
        except OSError as exc:  # out of processes or files: the run is made in one instead
            _stop(workers, pipes)
            raise UnshardableError(f"cannot start {jobs} processes ({exc.strerror or exc})") from None
        results: dict[int, tuple[str, Any]] = {}
        try:
            while len(results) < jobs:
                # Woken now and then only to move a progress bar.
                waiting = [p for p, k in pipes.items() if k not in results]
                for ready in wait(waiting, timeout=0.2 if progress is not None else None):
                    assert isinstance(ready, Connection)
                    k = pipes[ready]
                    try:
                        results[k] = ready.recv()
                    except EOFError:
                        results[k] = (
                            "failed",
                            f"shard {k} ended without a word (exit {workers[k].exitcode})",
                        )
                    if results[k][0] != "ok":
                        break
                if progress is not None:
                    progress(read[0])
                failed = [r for r in results.values() if r[0] != "ok"]
                if failed:
                    kind, detail = failed[0]
                    if kind == "fixture":
                        raise UnshardableError("the timeline has mistakes; read again in one process")
                    raise UnshardableError(str(detail))
            summaries = [results[k][1] for k in range(jobs)]
            if len({s["group_steps"] for s in summaries}) > 1:
                # Never expected: the steps of groups read no member. Were they to differ, a shard's
                # copy would not be the log's: one process decides instead.
                raise UnshardableError("the shards' group steps differed; run in one process")
            # Merged before the shards' processes are waited for: the system frees what they held
            # (a few milliseconds) meanwhile, on the other core.
            _write_merged(files, out)
        finally:
            _stop(workers, pipes)
    return summaries


@paused_gc
def _write_merged(files: list[Path], out: IO[bytes]) -> None:
    """Write the shards' steps merged into the log. Its rows (a tuple each, 230,000 at 100k x 90)
    make no cycle, and each young collection they set off would scan them: a quarter of the merge."""
    for piece in merged([batches(f) for f in files]):
        out.write(piece)


def _stop(workers: list[Any], pipes: dict[Connection, int]) -> None:
    """End the shards' processes that still run, and close the parent's ends of their pipes."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
        worker.join()
    for pipe in pipes:
        pipe.close()


def _shard_main(
    plan: Plan,
    path: Path,
    shown: str,
    zone: str,
    writer: Writer,
    shard: int,
    shards: int,
    steps_path: Path,
    pipe: Connection,
    read: Counters | None,
    exchange: Exchange,
) -> None:
    """A shard's process: run its members, write its steps, and say how it went on `pipe`."""
    try:
        start_kb = _rss_kb()
        keep_freed_memory()
        # First the keys of this shard's share of the blocks, routed to every shard; then the run,
        # which takes each block's route (its own or another's, written by then or soon after).
        ahead = open_timeline(path, shown, zone)
        try:
            route_blocks(ahead, exchange)
        finally:
            ahead.close()
        timeline = open_timeline(path, shown, zone)
        try:
            with steps_path.open("wb") as out:
                summary, _held = _run_shard(plan, timeline, writer, shard, shards, out, read, exchange)
        finally:
            timeline.close()
        # What the shard's own state took: its peak over what it had from the fork.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        summary["peak_rss_kb"] = usage.ru_maxrss
        summary["start_rss_kb"] = start_kb
        summary["cpu_s"] = usage.ru_utime + usage.ru_stime
        pipe.send(("ok", summary))
    except FixtureError:
        pipe.send(("fixture", None))
    except UnshardableError as exc:
        pipe.send(("unshardable", str(exc)))
    except Exception as exc:  # whatever it is, one process will meet it again and say so
        pipe.send(("failed", f"shard {shard} failed ({type(exc).__name__}: {exc}); run in one process"))
    finally:
        pipe.close()
    # The process ends here, its engine still held: its state is not freed object by object
    # (0.06 s of 50,000 members' state at 100k x 90), which the parent, joining it, would wait for.
    # What it wrote to stdout or stderr is flushed first, as a process's normal end would.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _rss_kb() -> int:
    """This process's resident memory now, in KiB (0 where /proc does not say)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


@kept_gc
def _run_shard(
    plan: Plan,
    timeline: Timeline,
    writer: Writer,
    shard: int,
    shards: int,
    out: IO[bytes],
    read: Counters | None,
    exchange: Exchange,
) -> tuple[dict[str, Any], Engine]:
    """Feed one shard's members and events to an engine, as `simulate_timeline` feeds all, each
    block read by its route (`route_blocks` has written every block's); return what it did, and
    the engine."""
    header = timeline.header
    engine = Engine(plan, start=header.start, seed=header.seed, task_delay=header.task_delay, keep_log=False)
    steps = Steps(out, shard)
    engine.sinks.append(writer(steps.buffer))
    for group in header.groups:
        engine.add_group(group)

    def meet(group: str | None) -> None:
        # Every shard knows every group a member has at the start, as one process would: its
        # calendars run in each.
        if group is not None and group not in engine.groups:
            engine.add_group(group)

    # Whether this shard owns a member, each found once: a member's line, history and events ask.
    owners = Owners(shard, shards)
    history: History | None = History()
    # A group first met mid-run arms its calendars from then on in one process: a shard that does
    # not see the event would not (the shard of the event's member says so).
    calendars = any(pb.schedule for pb in plan.playbooks)
    fed = 0
    last = header.start

    def begin() -> None:
        """The first event at or after the start (or the end of the file): history is folded in."""
        nonlocal history
        assert history is not None
        if history:  # as `simulate_timeline` registers it, this shard's members only
            for group_id in sorted(history.groups()):
                meet(group_id)
            listed = [as_listed(engine.members[m]) for m in history.members() if m in engine.members]
            for member in history.records(listed):
                if owners[member.id]:
                    engine.add_member(member)
        history = None  # folded into the members: not kept through the run
        engine.start()

    # Another shard's member line is checked by that shard: of it this one needs only its groups.
    timeline.others = lambda member: not owners[member]
    step = Stepper(engine, steps)
    for part in shard_blocks(timeline, exchange, engine.groups if calendars else None):
        if isinstance(part, Part):
            if history is not None:
                begin()
            step.events(part.numbers, part.events, fed)
            fed += part.count
            last = part.last
        elif isinstance(part, Members):
            # Every group the block's lines name, before this shard's members of it join them.
            for group_id in part.groups:
                meet(group_id)
            for member in part.members:
                engine.add_member(member)
        else:
            for record in part:
                if isinstance(record, MemberRecord):
                    for group_id in (*record.groups, *record.group_joined_at, *record.group_last_message_at):
                        meet(group_id)
                    if owners[record.id]:
                        engine.add_member(record)
                    continue
                if history is not None:
                    if record.time < header.start:  # history: sets state, starts nothing
                        history.add(record)  # everyone's: the groups it names are every shard's
                        continue
                    begin()
                fed += 1
                who, last = record.member, record.time
                if who is None:
                    raise UnshardableError(
                        f"the timeline has a {record.kind} event naming no member, which no shard owns"
                    )
                if calendars:
                    named_groups([record], engine.groups)
                if owners[who]:
                    step.events([fed], [record], 0)
        if read is not None:
            read[0] = timeline.read_bytes
    if history is not None:
        begin()
    step.until(header.end if header.end is not None else max(engine.now, last))
    steps.write()
    summary = {
        "shard": shard,
        "members": len(engine.members),
        "events": fed,
        "group_steps": steps.groups.hexdigest(),
    }
    return summary, engine
