"""The compiled plan: what the engine runs. Serializable, versioned, hashed, Lark-free.

Input: built by `sopdsl.plan.compiler` from a checked `model.Program`. Output: loaded by the engine
(`sopdsl.engine`), which never sees syntax nor the checked model. The plan's own records are
instructions, compiled playbooks and calendar entries, compiled templates and the declarations;
the values inside them are the checked language (`sopdsl.lang`). Each playbook's steps are a flat
list of instructions, so a member waiting three days is a program counter, not a sleeping thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SerializerFunctionWrapHandler, ValidationError, model_serializer

from sopdsl import lang
from sopdsl.errors import PlanError
from sopdsl.lang import Model
from sopdsl.plan.formats import upgrade

# 2: the content hash is taken over pydantic-core's JSON. 3: the plan's own records (no checked
# model inside: each step is written once), and templates split into parts at compile time.
FORMAT_VERSION = 3

Op = Literal["act", "stop", "wait", "wait_for", "assign", "branch", "split", "jump"]


def _unset(value: object) -> bool:
    return value is None


class TemplateField(Model):
    """A `{{ root.field }}` part of a template: read straight from the member, group or event."""

    root: str
    field: str


def _without_empty(data: dict[str, Any], *names: str) -> dict[str, Any]:
    """A record's JSON without the named fields where they are empty or false (fields added to a
    format after it was out: records without them are written, and hashed, as before)."""
    for name in names:
        if not data.get(name):
            data.pop(name, None)
    return data


class SplitArm(Model):
    """An arm of a split: its share and where its steps start; `control`: the holdout."""

    name: str
    percent: float
    pc: int
    control: bool = False

    @model_serializer(mode="wrap")
    def _without_default_control(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after format 3 was out: an arm that is not a control is written (and hashed) as before.
        return _without_empty(handler(self), "control")


class Instr(Model):
    """One instruction. `jump` is the false-branch, timeout or jump target."""

    op: Op
    action: lang.Action | None = None
    cond: lang.Cond | None = None
    duration: lang.Duration | None = None
    pattern: lang.EventPattern | None = None  # an `assign`'s (its task done)
    wait: lang.EventWait | None = None  # a `wait_for`'s
    jump: int | None = None
    arms: tuple[SplitArm, ...] = ()
    text: str | None = None
    parts: tuple[str | TemplateField, ...] | None = None  # of `text`, as `CompiledTemplate.parts`
    loc: str = ""
    # An `assign`'s: to the contact's owner ("owner"; None: the group's operator), and the template
    # staff are asked to send. Left out of the JSON when unset, so earlier plans keep their hash.
    to: Literal["owner"] | None = Field(default=None, exclude_if=_unset)
    template: str | None = Field(default=None, exclude_if=_unset)


class CompiledEntry(Model):
    """A calendar entry (`at CAL [for each member] [when C]`) with its instructions."""

    when: lang.CalRef
    for_each_member: bool = False
    cond: lang.Cond | None = None
    code: tuple[Instr, ...]
    loc: str


class CompiledPlaybook(Model):
    """A playbook as the engine runs it: its options and triggers, its instructions, and its
    calendar entries; `version` and the review fields stay for `why` and the plan switch."""

    name: str
    title: str | None = None
    scenarios: tuple[str, ...] = ()
    version: str | None = None
    author: str | None = None
    reviewers: tuple[str, ...] = ()
    scope: lang.Scope = lang.Scope()
    triggers: tuple[lang.Trigger, ...] = ()
    guard: lang.Cond | None = None
    repeat: lang.Repeat = lang.Repeat.ONCE
    cooldown: lang.Duration | None = None
    apply_to_existing: bool = True
    missed: lang.Missed = lang.Missed.SKIP
    on_change: lang.OnChange = lang.OnChange.FINISH
    active_from: dt.datetime | None = None
    active_until: dt.datetime | None = None
    code: tuple[Instr, ...]
    schedule: tuple[CompiledEntry, ...] = ()
    goals: tuple[lang.Goal, ...] = ()  # for the figures: the engine does not read them
    loc: str

    @model_serializer(mode="wrap")
    def _without_goals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after format 3 was out: a playbook without goals is written (and hashed) as before.
        return _without_empty(handler(self), "goals")

    def active_at(self, wall: dt.datetime) -> bool:
        """Whether the campaign window (`active from … until …`) holds at a local wall time."""
        if self.active_from is not None and wall < self.active_from:
            return False
        return self.active_until is None or wall < self.active_until


class CompiledTemplate(Model):
    """A message template: its source, and its parts when it is only text and `{{ root.field }}`
    substitutions (split once, by the compiler), so the engine renders it without Jinja."""

    name: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    source: str
    parts: tuple[str | TemplateField, ...] | None = None
    loc: str
    attachments: tuple[lang.Attachment, ...] = ()
    mentions: tuple[Literal["member"], ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after format 3 was out: a template without them is written (and hashed) as before,
        # so a plan compiled earlier loads with its hash, and so does the same playbook compiled now.
        return _without_empty(handler(self), "attachments", "mentions")


class Declarations(Model):
    """What the playbooks share: the zone, the declared attributes, counters, event and action
    types, coupons, groups, calendars, templates and the policy, and the files they came from."""

    timezone: str
    attributes: dict[str, lang.Attribute] = {}
    counters: dict[str, lang.Counter] = {}
    events: dict[str, lang.EventType] = {}
    actions: dict[str, lang.ActionType] = {}
    coupons: dict[str, lang.Coupon] = {}
    groups: dict[str, lang.Group] = {}
    calendars: dict[str, lang.Calendar] = {}
    templates: dict[str, CompiledTemplate] = {}
    policy: lang.Policy = lang.Policy()
    files: tuple[str, ...] = ()
    # The `platform` declaration, if any; left out of the JSON when absent (earlier plans' hash).
    platform: lang.Platform | None = Field(default=None, exclude_if=_unset)


class Plan(Model):
    """An executable plan: the program's declarations and every playbook compiled."""

    format_version: int = FORMAT_VERSION
    content_hash: str = ""
    declarations: Declarations
    playbooks: tuple[CompiledPlaybook, ...]
    event_index: dict[str, tuple[tuple[int, int], ...]]
    # The text of a plan read from an earlier format version: written back as it was read, since
    # its hash (which the store's journals name it by) is that version's.
    _read_as: str | None = PrivateAttr(default=None)

    def dumps(self) -> str:
        """The plan as JSON, with its content hash filled in (an upgraded plan: as it was read)."""
        if self._read_as is not None:
            return self._read_as
        return self.with_hash().model_dump_json(indent=1)

    def with_hash(self) -> Plan:
        """This plan with `content_hash` computed from its content."""
        return self.model_copy(update={"content_hash": _hash(self)})


def _hash(plan: Plan) -> str:
    # pydantic-core writes fields in declaration order and dicts in insertion order, so the same
    # content always gives the same bytes, and it does so many times faster than `json.dumps`.
    canonical = plan.model_dump_json(exclude={"content_hash"})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def event_key(pattern: lang.EventPattern) -> str:
    """The index key of an event pattern: kind, plus the tag or custom name where it has one."""
    if pattern.kind is lang.EventKind.CUSTOM:
        return f"custom:{pattern.custom}"
    if pattern.kind in (lang.EventKind.TAGGED, lang.EventKind.UNTAGGED):
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
    upgraded = data.get("format_version") != FORMAT_VERSION
    if upgraded:
        data = upgrade(data)  # its hash checked as its own version computed it, and kept
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"plan is malformed: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None
    if upgraded:
        plan._read_as = text
    elif plan.content_hash != _hash(plan):
        raise PlanError(
            "plan content hash does not match: the file was changed after compiling; recompile it"
        )
    return plan
