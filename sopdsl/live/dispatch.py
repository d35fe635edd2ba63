"""Executors and their dispatch: who carries out each action kind, custom actions' argument
schemas checked against the plan, and the retry policy for executors that fail.

Input: outbox rows and the executors a bot registered. Output: calls to those executors with the
action and its idempotency key, and each row's outcome (done, retry later, parked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.errors import EngineError
from sopdsl.kinds import ACTIONS
from sopdsl.live.retry import RetryPolicy
from sopdsl.plan import Plan

__all__ = [
    "ACTION_KINDS",
    "CustomAction",
    "Executor",
    "ExecutorError",
    "RetryPolicy",
    "calls",
    "check_custom",
    "missing_executors",
    "registry",
    "resolve",
]

Executor: TypeAlias = Callable[[Action, str], Awaitable[None] | None]
"""Carries out one action; gets the action and its idempotency key. Raising means it did not happen.
An `async def` executor is awaited (`awaiting.settle`) before its action counts as done."""

ACTION_KINDS = tuple(ACTIONS)  # from the registry of kinds


class ExecutorError(EngineError, ValueError):
    """An executor does not fit the plan: an unknown kind, or a custom action whose arguments disagree."""


@dataclass(frozen=True)
class CustomAction:
    """The executor of a custom action (`call NAME(...)`): its arguments' pydantic model and a function.

    The function gets the validated arguments, the action and its idempotency key.
    """

    args: type[BaseModel]
    fn: Callable[[BaseModel, Action, str], Awaitable[None] | None]

    def __call__(self, action: Action, key: str) -> Awaitable[None] | None:
        """Validate the action's arguments with the model, then call the function (an async one's
        awaitable is handed back, for the dispatcher to await)."""
        return self.fn(self.args.model_validate(action.detail.get("args", {})), action, key)


def calls(plan: Plan) -> Iterator[lang.CallStep]:
    """Every `call` step in the plan, in playbook order."""
    for compiled in plan.playbooks:
        for code in (compiled.code, *(entry.code for entry in compiled.schedule)):
            for instr in code:
                if instr.op == "act" and isinstance(instr.action, lang.CallStep):
                    yield instr.action


def check_custom(plan: Plan, name: str, args: type[BaseModel]) -> None:
    """Raise `ExecutorError` (naming the playbook line) if a call of `name` cannot fit `args`."""
    if name not in plan.declarations.actions:
        declared = ", ".join(sorted(plan.declarations.actions)) or "none"
        raise ExecutorError(f"no custom action '{name}' is declared in the playbooks (declared: {declared})")
    fields = args.model_fields
    open_model = args.model_config.get("extra") == "allow"
    for step in calls(plan):
        if step.action != name:
            continue
        for field, info in fields.items():
            if info.is_required() and field not in step.args:
                raise ExecutorError(
                    f"{step.loc}: call {name}(...) passes no '{field}', which {args.__name__} requires "
                    "(give it a default if only another version of the playbooks passes it)"
                )
        sample: dict[str, Any] = {}
        for arg, value in step.args.items():
            if arg not in fields and not open_model:
                raise ExecutorError(
                    f"{step.loc}: call {name}(...) passes '{arg}', which {args.__name__} has no field for"
                )
            sample[arg] = _sample(value)
        try:
            args.model_validate(sample)
        except ValidationError as exc:
            for error in exc.errors():
                arg = str(error["loc"][0]) if error["loc"] else ""
                if arg not in step.args:
                    continue
                value = step.args[arg]
                # A value read at run time (member.x, event.x) is only known by type here, so only
                # a type mismatch is certain; a literal must pass every constraint.
                if isinstance(value, lang.Ref) and not str(error["type"]).endswith(("_type", "_parsing")):
                    continue
                shown = (
                    f"{value.root}.{value.field} ({value.type.value})"
                    if isinstance(value, lang.Ref)
                    else repr(value)
                )
                raise ExecutorError(
                    f"{step.loc}: call {name}(...): argument '{arg}' = {shown} does not fit "
                    f"{args.__name__}: {error['msg']}"
                ) from None


def _sample(value: Any) -> Any:
    """A value of the right type for an argument known only by its type at load time."""
    if not isinstance(value, lang.Ref):
        return value.isoformat() if isinstance(value, dt.date) else value
    return {
        lang.ValueType.TEXT: "text",
        lang.ValueType.NUMBER: 1,
        lang.ValueType.BOOL: True,
        lang.ValueType.DATE: "2026-01-01",
        lang.ValueType.DATETIME: "2026-01-01T00:00:00+00:00",
    }[value.type]


def resolve(executors: Mapping[str, Executor | CustomAction], action: Action) -> Executor | None:
    """The executor for an action: a custom action's own, else the one for its kind."""
    if action.kind == "call":
        own = executors.get(f"call:{action.detail.get('action')}")
        if own is not None:
            return own
    return executors.get(action.kind)


def registry(
    plan: Plan, executors: Mapping[str, Executor | CustomAction]
) -> dict[str, Executor | CustomAction]:
    """Executors keyed for `resolve`, each checked: a kind name, or a declared custom action's name."""
    table: dict[str, Executor | CustomAction] = {}
    for name, executor in executors.items():
        if not callable(executor):
            # Caught here, not at each action (a TypeError, retried, then parked).
            raise ExecutorError(
                f"executor '{name}' is {type(executor).__name__} {executor!r:.40}, not a function: "
                "give a callable taking (action, idempotency_key)"
            )
        if name in ACTION_KINDS and not isinstance(executor, CustomAction):
            table[name] = executor
        elif isinstance(executor, CustomAction):
            check_custom(plan, name, executor.args)
            table[f"call:{name}"] = executor
        elif name in plan.declarations.actions:
            table[f"call:{name}"] = executor  # a plain function for a custom action: no schema to check
        else:
            raise ExecutorError(
                f"executor '{name}' is neither an action kind ({', '.join(ACTION_KINDS)}) "
                f"nor a declared custom action ({', '.join(sorted(plan.declarations.actions)) or 'none declared'})"
            )
    return table


def missing_executors(plan: Plan, table: Mapping[str, Executor | CustomAction]) -> list[str]:
    """The action kinds (and custom actions) the plan can emit that no executor handles."""
    needed: dict[str, None] = {}
    platform = plan.declarations.platform
    for compiled in plan.playbooks:
        for code in (compiled.code, *(entry.code for entry in compiled.schedule)):
            for instr in code:
                step = instr.action
                if instr.op == "assign":
                    needed["task"] = None
                    if plan.declarations.policy.escalate_to is not None:
                        needed["escalate"] = None
                elif step is not None and platform is not None and step.kind in platform.cannot:
                    needed["task"] = None  # staff do it: the engine makes it a task
                elif instr.op == "act" and step is not None and step.kind in ACTION_KINDS:
                    if isinstance(step, lang.CallStep):
                        if f"call:{step.action}" not in table and "call" not in table:
                            needed[f"call {step.action}"] = None
                    elif isinstance(step, lang.TagStep):
                        needed["untag" if step.remove else "tag"] = None
                    else:
                        needed[step.kind] = None
    return [kind for kind in needed if kind.startswith("call ") or kind not in table]


def payload(action: Action, key: str, zone: ZoneInfo) -> dict[str, Any]:
    """An action as executors hand it on (the log's JSON line, a webhook's body, the admin API's
    parked view): its JSON form, times in `zone`, with the idempotency key inside."""
    return {**action.to_json(zone), "idempotency_key": key}
