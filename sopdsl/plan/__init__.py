"""The compiled plan: what the engine runs. Serializable, versioned, hashed, Lark-free.

Input: built by `sopdsl.plan.compiler` from a checked `model.Program`. Output: loaded by the engine
(`sopdsl.engine`), which never sees syntax. Each playbook's steps are a flat list of
instructions, so a member waiting three days is a program counter, not a sleeping thread.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import ValidationError

from sopdsl.checker import model
from sopdsl.checker.model import Model
from sopdsl.errors import PlanError

FORMAT_VERSION = 2  # 2: the content hash is taken over pydantic-core's JSON

Op = Literal["act", "stop", "wait", "wait_for", "assign", "branch", "split", "jump"]


class SplitArm(Model):
    """An arm of a split: its share and where its steps start."""

    name: str
    percent: float
    pc: int


class Instr(Model):
    """One instruction. `jump` is the false-branch, timeout or jump target."""

    op: Op
    action: model.Step | None = None
    cond: model.Cond | None = None
    duration: model.Duration | None = None
    pattern: model.EventPattern | None = None
    jump: int | None = None
    arms: tuple[SplitArm, ...] = ()
    text: str | None = None
    loc: str = ""


class CompiledEntry(Model):
    """A calendar entry with its instructions."""

    entry: int
    code: tuple[Instr, ...]


class CompiledPlaybook(Model):
    """A playbook's options, triggers and instructions."""

    playbook: model.Playbook
    code: tuple[Instr, ...]
    schedule: tuple[tuple[Instr, ...], ...]


class Plan(Model):
    """An executable plan: the program's declarations and every playbook compiled."""

    format_version: int = FORMAT_VERSION
    content_hash: str = ""
    program: model.Program
    playbooks: tuple[CompiledPlaybook, ...]
    event_index: dict[str, tuple[tuple[int, int], ...]]

    def dumps(self) -> str:
        """The plan as JSON, with its content hash filled in."""
        return self.with_hash().model_dump_json(indent=1)

    def with_hash(self) -> Plan:
        """This plan with `content_hash` computed from its content."""
        return self.model_copy(update={"content_hash": _hash(self)})


def _hash(plan: Plan) -> str:
    # pydantic-core writes fields in declaration order and dicts in insertion order, so the same
    # content always gives the same bytes, and it does so many times faster than `json.dumps`.
    canonical = plan.model_dump_json(exclude={"content_hash"})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def event_key(pattern: model.EventPattern) -> str:
    """The index key of an event pattern: kind, plus the tag or custom name where it has one."""
    if pattern.kind is model.EventKind.CUSTOM:
        return f"custom:{pattern.custom}"
    if pattern.kind in (model.EventKind.TAGGED, model.EventKind.UNTAGGED):
        return f"{pattern.kind.value}:{pattern.tag}"
    return str(pattern.kind.value)


def loads(text: str) -> Plan:
    """Load a serialized plan, checking its format version and content hash."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"plan is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise PlanError("plan is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanError(
            f"plan format version {version!r} is not supported (expected {FORMAT_VERSION}); recompile it"
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"plan is malformed: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None
    if plan.content_hash != _hash(plan):
        raise PlanError(
            "plan content hash does not match: the file was changed after compiling; recompile it"
        )
    return plan
