"""The actions the engine decides on: the action log's records and their JSON form."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from sopdsl.plan.timeutil import iso  # in a compiled module: one call per action logged

# "deferred": held back by the delivery policy until its `time`, as the engine's `holds` are told;
# never logged or stored, since the action is logged once it goes out or is dropped.
# "unassigned": a staff task that names nobody (a member without an owner, a group without an
# operator); it goes out like "done" (an executor may find someone) and is left open to its deadline.
STATUSES = ("done", "deferred", "dropped", "blocked", "failed", "unassigned")
GOING_OUT = frozenset(("done", "unassigned"))  # the statuses of actions handed to the executors


# `init=False` and an `__init__` written out: compiled (mypyc), a dataclass's generated `__init__`
# stays interpreted, a quarter of the cost of deciding an action; tests/engine/test_record_types.py
# holds the written one to the fields (names, order, defaults).
@dataclass(slots=True, init=False)
class Action:
    """One action: what, to whom, when, from which playbook line, and what the policy did with it."""

    time: int
    kind: str
    playbook: str
    key: str
    member: str | None = None
    group: str | None = None
    target: str = "member"
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    # Why it did not go as planned, and nothing else: why it was moved (with `planned`), dropped,
    # blocked or failed. What the playbook says about an action (a kick's `because`) is in `detail`.
    reason: str | None = None
    loc: str = ""
    trigger: str = ""
    planned: int | None = None  # when it was first due, if the policy moved it

    def __init__(
        self,
        time: int,
        kind: str,
        playbook: str,
        key: str,
        member: str | None = None,
        group: str | None = None,
        target: str = "member",
        detail: dict[str, Any] | None = None,  # None: a new empty dict, as the field's factory
        status: str = "done",
        reason: str | None = None,
        loc: str = "",
        trigger: str = "",
        planned: int | None = None,
    ) -> None:
        self.time = time
        self.kind = kind
        self.playbook = playbook
        self.key = key
        self.member = member
        self.group = group
        self.target = target
        self.detail = {} if detail is None else detail
        self.status = status
        self.reason = reason
        self.loc = loc
        self.trigger = trigger
        self.planned = planned

    def fields(self) -> dict[str, Any]:
        """Every field by name, `detail` copied: `Action(**fields)` makes an equal action. Written
        out, not `getattr` by name: compiled, each read is native (the outbox makes one per row)."""
        return {
            "time": self.time,
            "kind": self.kind,
            "playbook": self.playbook,
            "key": self.key,
            "member": self.member,
            "group": self.group,
            "target": self.target,
            "detail": dict(self.detail),
            "status": self.status,
            "reason": self.reason,
            "loc": self.loc,
            "trigger": self.trigger,
            "planned": self.planned,
        }

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        """A JSON-ready dict; times are ISO 8601 in the given zone."""
        data: dict[str, Any] = {
            "at": iso(self.time, tz),
            "kind": self.kind,
            "status": self.status,
            "playbook": self.playbook,
            "target": self.target,
            "member": self.member,
            "group": self.group,
            **self.detail,
            "key": self.key,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.planned is not None and self.planned != self.time:
            data["planned"] = iso(self.planned, tz)
        return data


_SORTED: Final = msgspec.json.Encoder(order="sorted")


def json_line(data: dict[str, Any]) -> bytes:
    """A record of the dry run's `--format jsonl` log as its line: keys sorted, a value msgspec
    does not know (a custom action's argument a bot gave) in the standard library's form."""
    try:
        return _SORTED.encode(data) + b"\n"
    except (msgspec.EncodeError, TypeError):
        return (json.dumps(data, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode()


def json_lines(write: Callable[[bytes], object], tz: ZoneInfo) -> Callable[[Action], None]:
    """What writes each action as the line of its JSON form (`to_json`, see `json_line`)."""

    # Compiled with this module: the writer is called per action, and an interpreted one's call
    # and frame cost more than its encoding.
    def line(action: Action) -> None:
        write(action_line(action, tz))

    return line


# What `action_line` reads of an action, by position: its own fields as `to_json` names them (the
# two last only where `to_json` writes them), then its detail's values.
_OWN: Final = ("at", "kind", "status", "playbook", "target", "member", "group", "key", "reason", "planned")
_ALWAYS: Final = 8  # of `_OWN`, those every line has
_PLAIN: Final = msgspec.json.Encoder()  # a shape's fields are declared in sorted order
_SHAPES: Final[dict[tuple[Any, ...], tuple[Any, list[int]] | None]] = {}
_MAX_SHAPES: Final = 1024  # a bot's custom actions could name their arguments any way
_OWN_SET: Final = frozenset(_OWN)
_SCALARS: Final = frozenset((str, int, float, bool, type(None)))  # values no encoder orders


def action_line(action: Action, tz: ZoneInfo) -> bytes:
    """`json_line(action.to_json(tz))`, byte for byte, without the dict: the line is encoded from a
    struct whose fields are its keys in sorted order, one struct type per set of keys (`_shape`).
    The dict of `to_json` cost more than its encoding, and this runs per action logged."""
    detail = action.detail
    reason = bool(action.reason)
    planned = action.planned is not None and action.planned != action.time
    keys = (tuple(detail), reason, planned)
    shape = _SHAPES.get(keys)
    if shape is None and keys not in _SHAPES and len(_SHAPES) < _MAX_SHAPES:
        # Past the last shape kept, the dict's way: a struct type made per action would cost more.
        shape = _SHAPES[keys] = _shape(*keys)
    if shape is None:
        return json_line(action.to_json(tz))
    struct, order = shape
    values: list[Any] = [  # Any: compiled, a narrower type would check each value appended
        iso(action.time, tz),
        action.kind,
        action.status,
        action.playbook,
        action.target,
        action.member,
        action.group,
        action.key,
        action.reason,
        iso(action.planned, tz) if planned and action.planned is not None else None,
    ]
    # Nested values sorted as `json_line` sorts them (a dict's keys, a set): the plain encoder for
    # a detail of plain values only, as most are.
    plain = True
    for value in detail.values():  # a loop, not a starred list: compiled, a tenth of the cost
        values.append(value)
        if type(value) not in _SCALARS:
            plain = False
    try:
        return (_PLAIN if plain else _SORTED).encode(struct(*[values[at] for at in order])) + b"\n"
    except (msgspec.EncodeError, TypeError):  # a value msgspec does not know: the standard library's form
        return json_line(action.to_json(tz))


def _shape(names: tuple[Any, ...], reason: bool, planned: bool) -> tuple[Any, list[int]] | None:
    """The struct a line is encoded as whose detail has these keys, with `reason` and `planned`
    or not, and where each of its fields is among `action_line`'s values; None where a detail key
    is one of the action's own (`to_json`'s dict decides which one is written) or not a text."""
    if not all(isinstance(name, str) for name in names) or not _OWN_SET.isdisjoint(names):
        return None
    keys = list(_OWN[:_ALWAYS]) + ["reason"] * reason + ["planned"] * planned + list(names)
    places = list(range(_ALWAYS)) + [_ALWAYS] * reason + [_ALWAYS + 1] * planned
    places += range(len(_OWN), len(_OWN) + len(names))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    fields = [(f"f{i}", Any) for i in range(len(order))]
    try:
        struct = msgspec.defstruct("Line", fields, rename={f"f{i}": keys[k] for i, k in enumerate(order)})
    except ValueError:  # a key msgspec does not take as a field's name (a quote, a control character)
        return None
    return struct, [places[k] for k in order]
