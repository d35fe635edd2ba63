"""Matching two versions of a playbook, for loading a new plan while members are mid-flow.

Input: a playbook's compiled form in the plan running now and in the plan replacing it. Output:
whether its steps changed, and where in the new steps a member waiting at an old step goes.
Steps are compared by what they do, never by their `path:line`: an edit that only moves a
playbook down its file (a comment added above it) changes no member's place.
"""

from __future__ import annotations

import difflib
import json
import posixpath
from dataclasses import dataclass
from typing import Any

from sopdsl.engine.conditions import playbook_windows
from sopdsl.plan import CompiledPlaybook, Instr, Plan

# How a flow fared when a new plan loaded.
MOVED = "moves to the new version"
FINISHES = "finishes on the version it started"
ENDED = "ends: its step is gone from the new version"


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What a plan change did to one flow in progress, for the log."""

    playbook: str
    member: str | None
    group: str | None
    outcome: str  # MOVED, FINISHES or ENDED
    old: str  # hash prefix of the plan the flow was running
    new: str  # hash prefix of the plan loaded
    at: str = ""  # the step the flow waits at (new version for MOVED, old otherwise)

    def __str__(self) -> str:
        who = self.member or f"group {self.group}"
        where = f" in group {self.group}" if self.member and self.group else ""
        step = f" (at {self.at})" if self.at else ""
        version = self.old if self.outcome == FINISHES else f"{self.old} -> {self.new}"
        return f"plan change {version}: {who}{where} in '{self.playbook}' {self.outcome}{step}"


def unrecorded_windows(running: Plan, loaded: Plan) -> list[str]:
    """Event kinds the loaded version counts over time windows (`orders in last 30 days`) that
    the running one did not record: those counts start from zero at the switch."""
    before = set().union(*(playbook_windows(c) for c in running.playbooks))
    after = set().union(*(playbook_windows(c) for c in loaded.playbooks))
    return sorted(after - before)


def same_files(a: Plan, b: Plan) -> bool:
    """Whether two plans are the same files compiled from different folders (only the paths differ)."""
    return bool(_relative(a) == _relative(b))


def _relative(plan: Plan) -> Any:
    """The plan as JSON with every path made relative to the folder its files share."""
    data = plan.model_dump(mode="json", exclude={"content_hash"})
    files = [f.replace("\\", "/") for f in data["declarations"]["files"]]
    folders = [f.rsplit("/", 1)[0] if "/" in f else "" for f in files]
    try:
        base = posixpath.commonpath(folders) if folders and all(folders) else ""
    except ValueError:  # absolute and relative paths mixed: no folder to share
        base = ""
    prefix = f"{base}/" if base and base != "/" else base

    def relative(path: str) -> str:
        return path.replace("\\", "/").removeprefix(prefix) if prefix else path

    def walk(value: Any) -> Any:
        # Only where paths are: each `loc`, and the list of files; a template's text is left alone.
        # A template's parts are its source split by the compiler: one plan that has them and one
        # that does not (read from an earlier format) are the same files.
        if isinstance(value, dict):
            derived = "parts" if "parts" in value and ("source" in value or "text" in value) else None
            return {
                k: relative(v) if k == "loc" and isinstance(v, str) else walk(v)
                for k, v in value.items()
                if k != derived
            }
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    data["declarations"]["files"] = [relative(f) for f in data["declarations"]["files"]]
    return walk(data)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "loc"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def signature(instr: Instr) -> str:
    """What an instruction does, without its location or jump targets (which move with any edit above)."""
    data = instr.model_dump(mode="json", exclude={"loc", "jump", "parts"})  # parts: derived from text
    data["arms"] = [(arm["name"], arm["percent"]) for arm in data["arms"]]
    return json.dumps(_strip(data), sort_keys=True, ensure_ascii=False)


def _signatures(code: tuple[Instr, ...]) -> list[str]:
    return [signature(i) for i in code]


def _dump(value: Any, *, exclude: set[str] | None = None) -> str:
    return json.dumps(
        _strip(value.model_dump(mode="json", exclude=exclude)), sort_keys=True, ensure_ascii=False
    )


def _shape(code: tuple[Instr, ...]) -> list[tuple[str, int | None, tuple[int, ...]]]:
    # Jump targets, as offsets: two codes with the same signatures and the same shape behave alike.
    return [(i.op, i.jump, tuple(arm.pc for arm in i.arms)) for i in code]


def same_steps(old: CompiledPlaybook, new: CompiledPlaybook) -> bool:
    """Whether two versions of a playbook run the same steps (calendar entries included)."""
    if len(old.schedule) != len(new.schedule):
        return False
    codes = [
        (old.code, new.code),
        *((a.code, b.code) for a, b in zip(old.schedule, new.schedule, strict=True)),
    ]
    if any(_signatures(a) != _signatures(b) or _shape(a) != _shape(b) for a, b in codes):
        return False
    return all(_dump(a.when) == _dump(b.when) for a, b in zip(old.schedule, new.schedule, strict=True))


def same_trigger(old: Any, new: Any, *, keep_duration: bool = False) -> bool:
    """Whether a trigger is the same one in both versions, so what it already did still counts.

    An absence or group-silence trigger whose duration changed is still the same silence being
    watched (`keep_duration=False`): members keep counting from where they were.
    """
    exclude = None if keep_duration else {"duration"}
    return bool(old.kind == new.kind and _dump(old, exclude=exclude) == _dump(new, exclude=exclude))


def map_position(old: CompiledPlaybook, new: CompiledPlaybook, entry: int, pc: int) -> int | None:
    """Where a flow at `pc` of `entry` (-1: the `do` steps) in `old` goes in `new`, or None if its step is gone.

    The two step lists are aligned (difflib): a step unchanged maps to itself; a step edited
    (`wait 2 days` made `wait 3 days`, perhaps with a step added beside it) maps to its edit,
    found as the same kind of step in the same place among the edited ones.
    """
    if entry >= 0:
        if entry >= len(new.schedule) or _dump(old.schedule[entry].when) != _dump(new.schedule[entry].when):
            return None
    before = old.code if entry < 0 else old.schedule[entry].code
    after = new.code if entry < 0 else new.schedule[entry].code
    matcher = difflib.SequenceMatcher(None, _signatures(before), _signatures(after), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if not i1 <= pc < i2:
            continue
        if tag == "equal":
            return j1 + pc - i1
        if tag == "replace":
            # Edited steps: the k-th step of its kind in the old run of steps is the k-th of
            # that kind in the new one, if both runs have as many of that kind.
            kind = before[pc].op
            olds = [i for i in range(i1, i2) if before[i].op == kind]
            news = [j for j in range(j1, j2) if after[j].op == kind]
            if len(olds) == len(news):
                return news[olds.index(pc)]
        return None
    return None
