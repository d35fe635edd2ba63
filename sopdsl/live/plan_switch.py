"""Switching a live runtime to another version of its plan, and the executors a plan needs; the
error a runtime given another version than its shard runs raises (`PlanChangedError`).

`Runtime` takes these methods from `Switching`: a switch is journaled as a `plan` entry through
the runtime's own application, so every worker's engine switches at the same point of the shard's
journal, and members mid-flow finish or move as the new version's `on change` says.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from sopdsl.engine import versions
from sopdsl.engine.actions import Action
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError
from sopdsl.live.clock import Clock
from sopdsl.live.closing import refuse_if_closed
from sopdsl.live.dispatch import CustomAction, Executor, ExecutorError, check_custom, missing_executors
from sopdsl.live.shards import Shards
from sopdsl.live.store import Store
from sopdsl.plan import Plan

log = logging.getLogger("sopdsl.runtime")

_SWITCH = "to switch {} to this version (members mid-flow finish or move as each playbook's `on change` says)"


class PlanChangedError(EngineError):
    """A shard's journal was recorded under another plan than the one this runtime was given.

    Its message names the Python option (`on_plan_change='reload'`); `sopdsl run` prints
    `command_line()`, which names its own (`--reload`)."""

    def __init__(self, shard: str, store: str, running: str, given: str) -> None:
        self.shard, self.store, self.running, self.given = shard, store, running, given
        super().__init__(
            f"{self.what()}. {_SWITCH.format('it').capitalize()}, pass on_plan_change='reload' "
            "(sopdsl run --reload); to start afresh, use another shard or store"
        )

    def __reduce__(self) -> tuple[type[PlanChangedError], tuple[str, str, str, str]]:
        return type(self), (self.shard, self.store, self.running, self.given)

    def what(self) -> str:
        """What was refused: the shard, its store (its URL as given: redact it first), both plans."""
        return f"shard '{self.shard}' in {self.store} runs plan {self.running[:12]}, not {self.given[:12]}"

    def command_line(self) -> str:
        """The refusal as `sopdsl run` prints it: an `error:` line, then a `hint:` naming its options."""
        return (
            f"error: {self.what()}\nhint: {_SWITCH.format('the shard')}, start with --reload; "
            "to start afresh, use another --shard or --store"
        )


class Switching(ABC):
    """`reload`, `register_custom` and `missing_executors` of `sopdsl.live.runtime.Runtime`."""

    plan: Plan
    clock: Clock
    shard: str
    store: Store
    executors: dict[str, Executor | CustomAction]
    closed: bool
    _lock: threading.RLock
    _shards: Shards

    @abstractmethod
    def _apply(
        self,
        name: str,
        new: list[dict[str, Any]],
        *,
        until: int | None,
        changes: list[PlanChange] | None = None,
    ) -> list[Action]: ...

    @abstractmethod
    def _woken(self, stored: bool = True) -> None: ...

    def register_custom(
        self, name: str, args: type[BaseModel], fn: Callable[[BaseModel, Action, str], Awaitable[None] | None]
    ) -> None:
        """Register the executor of custom action `name`; raises `ExecutorError` if a call of it cannot fit `args`."""
        check_custom(self.plan, name, args)
        self.executors[f"call:{name}"] = CustomAction(args, fn)

    def reload(self, plan: Plan) -> list[PlanChange]:
        """Switch the shard to another version of the plan now, journaled; return what happened to flows in progress.

        Members mid-flow finish on the version they started or move to the new one, as the new
        version of their playbook declares (`on change finish | migrate`); each decision is also
        logged. Raises `ExecutorError` when a registered custom action cannot take the new
        version's calls; nothing changes then. With several workers, whichever holds the shard
        applies the switch (this call then returns []); give every worker the new plan.
        """
        if not plan.content_hash:
            plan = plan.with_hash()
        if plan.content_hash == self.plan.content_hash or versions.same_files(self.plan, plan):
            return []
        return self._switch(plan, self.plan)

    def _switch(self, plan: Plan, previous: Plan) -> list[PlanChange]:
        refuse_if_closed(self.closed, self.store.url)
        for key, executor in self.executors.items():
            name = key.removeprefix("call:")
            if isinstance(executor, CustomAction) and name in plan.declarations.actions:
                try:
                    check_custom(plan, name, executor.args)
                except ExecutorError as exc:
                    # Flows of the running version go on calling it the old way, so the way out
                    # is one model that takes both, registered before the switch.
                    raise ExecutorError(
                        f"{exc}. Nothing was switched. Flows on the running version will still call "
                        f"{name} as it does, so register one model that takes both versions' calls "
                        f"(an argument only one version passes given a default) with "
                        f"register_custom('{name}', ...), then reload"
                    ) from None
        self.store.save_plan(plan.content_hash, plan.dumps())
        self._shards.plans[plan.content_hash] = plan
        body = {"op": "plan", "hash": plan.content_hash, "time": self.clock.now()}
        changes: list[PlanChange] = []
        with self._lock:
            self._apply(self.shard, [body], until=None, changes=changes)
        unrecorded = versions.unrecorded_windows(previous, plan)
        if unrecorded:
            log.warning(
                "sopdsl runtime: plan %s counts %s events over time windows plan %s did not record; "
                "those counts start from zero now",
                plan.content_hash[:12],
                ", ".join(unrecorded),
                previous.content_hash[:12],
            )
        self.plan = plan
        self._woken()
        return changes

    def missing_executors(self) -> list[str]:
        """Action kinds the plan can emit that no executor handles (their actions would be parked)."""
        return missing_executors(self.plan, self.executors)
