"""A shard's workflow: the engine run by Temporal, its state carried across continue-as-new by snapshot.

Input: the shard's settings (`ShardInput`) and the engine's compressed snapshot (empty at the
first run); then `entries` signals (events, groups, members, plan changes and, on a signalled
clock, the passing of time), each entry taken once by its id. Output: one activity per action
to go out, carrying the action's idempotency key (at least once, keyed; one member's actions in
the order decided), a `status` query, a `look` update (the admin API's views of the engine and
its task inbox, and the facts of a report: the per-playbook figures it keeps, counted as the
in-process runtime counts them) and a `tasks` update (staff's claims and done marks, kept in the
workflow's state beside the task actions it decided). On the wall clock the workflow sleeps on a durable timer
until the engine's next due timer. The engine is deterministic and reads no clock, so a
replay of the workflow's history rebuilds it exactly; sopdsl's modules are passed through the
sandbox (imported once per process, not per workflow run) because they keep no state that one
workflow could leak to another: their caches are keyed by plan hash.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    # `import a.b as b`, not `from a import b`: the sandbox passes a module through when it is
    # named whole; `from sopdsl.temporal import entries` would import a fresh copy per run.
    import sopdsl.figures.goals as figure_goals
    import sopdsl.live.admin_views as admin_views
    import sopdsl.live.shard_figures as shard_figures
    import sopdsl.live.store_figures as store_figures
    import sopdsl.temporal.entries as entries
    from sopdsl.engine.actions import GOING_OUT, Action
    from sopdsl.engine.engine import Engine
    from sopdsl.errors import SopdslError
    from sopdsl.plan import Plan, timeutil
    from sopdsl.temporal.shapes import (
        ACTIVITY,
        BATCH,
        BATCH_MAX,
        ENTRIES,
        FIGURES,
        FLUSH,
        INBOX,
        LOOK,
        SPAN,
        STATUS,
        TASKS,
        WALL,
        WORKFLOW,
        ActionCall,
        BatchResult,
        ShardInput,
        executor_key,
        order_of,
    )

_PARKED_KEPT = 50  # parked actions kept for the status query (all are counted)
_SETTLE = 30.0  # seconds actions in flight get to finish before a continue-as-new carries them over


@workflow.defn(name=WORKFLOW)
class ShardWorkflow:
    """One shard's engine; see the module docstring."""

    @workflow.init
    def __init__(self, state: ShardInput, snapshot: bytes) -> None:
        self.state = state
        self.inbox: list[dict[str, Any]] = list(state.inbox)
        self.seen = dict(state.seen)
        self.texts = dict(state.plans)
        self.needed = {state.plan}  # plans this run's engine asked for: handed on at continue-as-new
        self.totals = dict(state.totals)
        self.totals["runs"] = self.totals.get("runs", 0) + 1
        self.parked = list(state.parked)
        self.task_rows = dict(state.task_rows)  # task and escalate actions the inbox may show
        self.task_marks = dict(state.task_marks)  # staff's claims and done marks, by task key
        self.outbox: dict[str, ActionCall] = {}  # decided, not yet executed, in order decided
        self.chains: dict[str, asyncio.Task[None]] = {}  # the latest call of each member (or group)
        self.decided: list[Action] = []
        self.continuing = False
        self.too_large = 0  # the size of a state too large to hand on, once found
        if snapshot:
            self.engine = Engine.restore(entries.unpack(snapshot), self._plan, keep_log=False)
        else:
            self.engine = Engine(self._plan(state.plan), start=state.start, seed=state.seed, keep_log=False)
        self.engine.sinks.append(self.decided.append)
        # The per-playbook figures, counted as the in-process runtime counts them (`shard_figures`),
        # kept in the workflow's state and handed on; a replay of the history counts them again,
        # into a state rebuilt from nothing, so each decision counts once.
        self.figures = store_figures.PlaybookFacts.of_rows(state.figures)
        self.watcher = shard_figures.ShardFigures(self.engine)
        self.watcher.begin()

    def _plan(self, plan_hash: str) -> Plan:
        self.needed.add(plan_hash)
        return entries.plan_of(plan_hash, self.texts)

    # ---- what comes in -------------------------------------------------------------------------

    @workflow.signal(name=ENTRIES)
    def entries(self, batch: list[dict[str, Any]]) -> None:
        """Entries to apply, in order (the client's journal bodies)."""
        self.inbox.extend(batch)

    @workflow.update(name=FLUSH)
    async def flush(self) -> dict[str, Any]:
        """The status once every entry received is applied and every action decided has run;
        `settled` is false when a continue-as-new came first (ask again)."""
        await workflow.wait_condition(lambda: self.continuing or (not self.inbox and not self.outbox))
        return {**self.status(), "settled": not self.continuing}

    @workflow.update(name=LOOK)
    async def look(self, view: str, argument: str) -> dict[str, Any]:
        """A view of the engine (`admin_views.VIEWS`, as the admin API shows it) once every entry
        received is applied; `settled` is false when a continue-as-new came first (ask again)."""
        await workflow.wait_condition(lambda: self.continuing or not self.inbox)
        if self.continuing:
            return {"settled": False}
        if view == INBOX:
            rows = {(r["kind"], key): r for key, r in self.task_rows.items()}
            found = admin_views.inbox_tasks(admin_views.open_tasks(self.engine), rows, self.task_marks)
            return {"settled": True, "found": found}
        if view == FIGURES:
            lo, hi = (int(t) for t in argument.split())
            kept = self.figures.found(lo, hi)._asdict()
            del kept["sums"], kept["seen"]  # per group: not kept here
            return {"settled": True, "found": {**admin_views.report_view(self.engine, lo, hi), **kept}}
        if view == SPAN:  # as a store's `figures_span`: only per-playbook figures are kept here
            span = store_figures.span_of(slot for (_, slot, _) in self.figures.sums)
            return {"settled": True, "found": list(span) if span else None}
        return {"settled": True, "found": admin_views.look(self.engine, view, argument)}

    @look.validator
    def _known_view(self, view: str, argument: str) -> None:
        # Refused before it is written to the history: an unknown view, and any view while the
        # run hands over (the client asks the next run), so that asking again adds no history.
        if view not in admin_views.VIEWS and view not in (INBOX, FIGURES, SPAN):
            raise ValueError(
                f"no view '{view}'; views: {', '.join(admin_views.VIEWS)}, {INBOX}, {FIGURES}, {SPAN}"
            )
        if self.continuing:
            raise ValueError("the shard is continuing as new: ask again")

    @workflow.update(name=TASKS)
    def mark_task(self, op: str, key: str, who: str) -> str:
        """Claim a staff task for `who` unless someone holds it (`claim`: who holds it now), or
        mark it done (`finish`); kept in the workflow's state, so in its history."""
        mark = self.task_marks.setdefault(key, {"claimed_by": None, "done": False})
        if op == "finish":
            mark["done"] = True
            return ""
        if mark["claimed_by"] is None:
            mark["claimed_by"] = who
        return str(mark["claimed_by"])

    @mark_task.validator
    def _known_mark(self, op: str, key: str, who: str) -> None:
        if op not in ("claim", "finish"):
            raise ValueError(f"no task operation '{op}'; claim or finish")

    @workflow.query(name=STATUS)
    def status(self) -> dict[str, Any]:
        """Counters, the engine's clock and next timer, the plan, the latest parked actions."""
        return {
            **self.totals,
            "pending": len(self.outbox),
            "inbox": len(self.inbox),
            "now": self.engine.now,
            "next_due": self.engine.next_due(),
            "plan": self.engine.plan.content_hash,
            "members": len(self.engine.members),
            "parked_actions": self.parked[-_PARKED_KEPT:],
            "history": workflow.info().get_current_history_length(),
            "too_large": self.too_large,
        }

    # ---- the loop ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, state: ShardInput, snapshot: bytes) -> None:
        """Apply entries and run due timers until the history is long, then continue as new."""
        for call in state.outbox:
            self._send(call)  # carried over: sent again (their keys make that safe)
        while True:
            await self._wait()
            if self._long():
                await self._continue_as_new()
            self._apply_inbox()
            self._run_timers()

    async def _continue_as_new(self) -> None:
        """Hand the state to a new run, once the actions in flight had a moment to finish (those
        that did not are carried over); a state too large for Temporal's payloads is said, and kept."""
        self.continuing = True
        try:
            await workflow.wait_condition(
                lambda: not self.outbox and workflow.all_handlers_finished(), timeout=_SETTLE
            )
        except TimeoutError:
            pass
        handover = self._handover()
        blob = entries.pack(self.engine.snapshot())
        size = len(blob) + entries.payload_size(handover)
        if size <= entries.PAYLOAD_LIMIT:
            workflow.continue_as_new(args=[handover, blob])
        # Too large to hand on: the shard goes on in this run (its history grows towards
        # Temporal's limit), and says so, so that it is split before that.
        self.continuing = False
        self.state.continue_after = workflow.info().get_current_history_length() + 2000
        self.too_large = size
        workflow.logger.error(
            "sopdsl shard '%s': its state (%d bytes) is over the %d bytes a run can hand on; "
            "split the shard (see docs/scaling.md)",
            self.state.shard,
            size,
            entries.PAYLOAD_LIMIT,
        )

    async def _wait(self) -> None:
        """Until entries come, the history asks for a new run, or (wall clock) a timer is due."""

        def ready() -> bool:
            return bool(self.inbox) or self._long()

        if self.state.clock != WALL:
            await workflow.wait_condition(ready)
            return
        due = self.engine.next_due() if self.engine.started else 0
        if due is None:
            await workflow.wait_condition(ready)
            return
        delay = due - workflow.now().timestamp()
        if delay > 0 and not ready():
            try:
                await workflow.wait_condition(ready, timeout=delay, timeout_summary="next engine timer")
            except TimeoutError:
                pass

    def _long(self) -> bool:
        info = workflow.info()
        length = info.get_current_history_length()
        return length >= self.state.continue_after or (
            info.is_continue_as_new_suggested() and not self.too_large
        )

    def _apply_inbox(self) -> None:
        batch, self.inbox = self.inbox, []
        for body in batch:
            ident = body.get("id")
            if ident is not None:
                if ident in self.seen:
                    self._count("duplicates")
                    continue
                self.seen[ident] = entries.entry_time(body)
            if body["op"] == "plan" and "text" in body:
                self.texts[body["hash"]] = body["text"]
            try:
                changes = entries.apply(self.engine, body, self._plan)
            except SopdslError as exc:
                # Checked at the client's door, so this is rare; the shard goes on without it.
                self._count("refused")
                workflow.logger.warning("sopdsl shard '%s': entry refused: %s", self.state.shard, exc)
                continue
            self.watcher.event(body)
            for change in changes:
                workflow.logger.info("sopdsl shard '%s': %s", self.state.shard, change)
            if body["op"] == "event":
                self._count("events_in")
        if len(self.seen) > 2 * entries.SEEN_MAX:
            self.seen = entries.trim_seen(self.seen, self.engine.now)
        self._dispatch()

    def _run_timers(self) -> None:
        if self.state.clock != WALL:
            return  # a signalled clock moves by `advance` entries alone
        now = int(workflow.now().timestamp())
        due = self.engine.next_due()
        if not self.engine.started or (due is not None and due <= now):
            self.engine.advance(now)
            self._dispatch()

    # ---- what goes out -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.figures.add(self.watcher.end())  # what the entries and timers just applied decided
        self.watcher.begin()
        decided, self.decided[:] = list(self.decided), []
        calls = []
        for action in decided:
            self._count("actions")
            if action.status not in GOING_OUT:
                self._count("failed" if action.status == "failed" else "skipped")
                continue
            fields = action.fields()
            if action.kind in admin_views.STAFF_KINDS:
                self.task_rows[action.key] = fields  # read only, as the call's are: one dict for both
            key = executor_key(self.state.shard, action.key)
            calls.append(ActionCall(self.state.shard, key, fields, self.state.dry_run))
        for i in range(0, len(calls), BATCH_MAX):
            self._send_batch(calls[i : i + BATCH_MAX])

    def _send_batch(self, calls: list[ActionCall]) -> None:
        """The actions of one step in one activity, after the earlier actions of their members."""
        orders = list(dict.fromkeys(order_of(c) for c in calls))
        before = list(dict.fromkeys(self.chains[o] for o in orders if o in self.chains))
        for call in calls:
            self.outbox[call.key] = call
        task = asyncio.create_task(self._execute_batch(before, calls))
        for order in orders:
            self.chains[order] = task

    async def _execute_batch(self, before: list[asyncio.Task[None]], calls: list[ActionCall]) -> None:
        if before:
            await workflow.wait(before)  # one member's actions go out one at a time, in order
        try:
            result = await workflow.execute_activity(
                BATCH,
                calls,
                result_type=BatchResult,
                start_to_close_timeout=timedelta(seconds=self.state.retry.timeout),
                retry_policy=self._policy(self.state.retry.attempts),
                summary=f"{len(calls)} action(s)",
            )
        except ActivityError:
            result = BatchResult(untried=[c.key for c in calls])  # each tried alone, with its own retries
        me = asyncio.current_task()
        failed = {f.key: f for f in result.failed}
        done = set(result.done)
        for call in calls:
            order = order_of(call)
            if self.chains.get(order) is me:
                del self.chains[order]
            if call.key in done:
                self._count("executed")
                self.outbox.pop(call.key, None)
            elif call.key in failed and (failed[call.key].permanent or self.state.retry.attempts < 2):
                self._park(call, failed[call.key].error)
            else:  # failed (retried alone, after the policy's first delay), or not tried after a failure
                first = failed.get(call.key)
                delay = self.state.retry.base if first is not None else 0.0
                if first is not None and first.retry_after:
                    delay = max(delay, first.retry_after)
                self._send(call, delay, attempts=self.state.retry.attempts - (first is not None))

    def _send(self, call: ActionCall, delay: float = 0.0, attempts: int | None = None) -> None:
        self.outbox[call.key] = call
        order = order_of(call)
        tries = self.state.retry.attempts if attempts is None else attempts
        self.chains[order] = asyncio.create_task(self._execute(self.chains.get(order), call, delay, tries))

    async def _execute(
        self, before: asyncio.Task[None] | None, call: ActionCall, delay: float, attempts: int
    ) -> None:
        if before is not None:
            await workflow.wait([before])  # one member's actions go out one at a time, in order
        try:
            if delay > 0:
                await workflow.sleep(delay)
            await workflow.execute_activity(
                ACTIVITY,
                call,
                start_to_close_timeout=timedelta(seconds=self.state.retry.timeout),
                retry_policy=self._policy(attempts),
                summary=call.key,
            )
            self._count("executed")
            self.outbox.pop(call.key, None)
        except ActivityError as exc:
            cause = exc.cause
            self._park(call, cause.message if isinstance(cause, FailureError) else str(exc))
        finally:
            order = order_of(call)
            if self.chains.get(order) is asyncio.current_task():
                del self.chains[order]

    def _policy(self, attempts: int) -> RetryPolicy:
        retry = self.state.retry
        return RetryPolicy(
            initial_interval=timedelta(seconds=retry.base),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=retry.cap),
            maximum_attempts=max(1, attempts),
            non_retryable_error_types=["ExecutorError"],
        )

    def _park(self, call: ActionCall, error: str) -> None:
        """Give an action up after its tries: counted, kept for the status query, logged."""
        self._count("parked")
        self.outbox.pop(call.key, None)
        kept = {"key": call.key, "kind": call.action["kind"], "error": error}
        self.parked = [*self.parked[-_PARKED_KEPT + 1 :], kept]
        workflow.logger.error("sopdsl shard '%s': parked %s: %s", self.state.shard, call.key, error)

    def _count(self, name: str) -> None:
        self.totals[name] = self.totals.get(name, 0) + 1

    def _handover(self) -> ShardInput:
        """The next run's input: the settings, and what this run has not finished."""
        plan_hash = self.engine.plan.content_hash
        return dataclasses.replace(
            self.state,
            plan=plan_hash,
            plans={h: self.texts[h] for h in sorted(self.needed | {plan_hash}) if h in self.texts},
            seen=entries.trim_seen(self.seen, self.engine.now),
            inbox=self.inbox,
            outbox=list(self.outbox.values()),
            totals=self.totals,
            parked=self.parked[-_PARKED_KEPT:],
            figures=self._kept_figures(),
            **self._inbox_kept(),
        )

    def _kept_figures(self) -> dict[str, list[list[Any]]]:
        """The figures handed on: per-member rows as a store's purge of `keep_days` leaves them, and
        the sums of older slots by day, so that the state stays small however long the shard runs."""
        plan = self.engine.plan
        before = self.engine.now - int(self.state.keep_days * 86400)
        self.figures.prune(before, before - figure_goals.longest_reach(plan))
        self.figures.merge_days(before, timeutil.zone(plan.declarations.timezone))
        return self.figures.rows()

    def _inbox_kept(self) -> dict[str, Any]:
        """The task rows the inbox may still show, and the marks they (or open tasks) need."""
        open_keys = {t["key"] for t in admin_views.open_tasks(self.engine)}
        rows = {
            key: row
            for key, row in self.task_rows.items()
            if admin_views.still_shown(key, row, open_keys, self.task_marks)
        }
        needed = open_keys | set(rows) | {str(r["detail"].get("task")) for r in rows.values()}
        marks = {key: mark for key, mark in self.task_marks.items() if key in needed}
        return {"task_rows": rows, "task_marks": marks}
