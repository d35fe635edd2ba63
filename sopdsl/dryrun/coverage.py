"""Coverage of the playbooks by their fixtures: which playbooks, triggers, steps and branches a dry
run exercised, per `.sop` file.

Input: the plans `sopdsl test` runs (each with the folder its locations are relative to), and the
engine's step hook (`sopdsl.engine.trace.StepHook`) during each run. Output: a `CoverageReport`:
per file, every item with how often it ran, as text, JSON or Cobertura XML.

What counts: a playbook ran when a flow of it started; a trigger (or calendar entry) when it
started a flow; a step when a flow reached it; a branch when a flow took it: an `if`'s condition
held (each of `if` / `else if`) or none did (the `else`, written or not), a wait's or a task's
`then` (the event came, the task was done) or `else` (the time ran out), each arm of a `split`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax import saxutils

from sopdsl.engine.state import Flow
from sopdsl.plan import CompiledPlaybook, Instr, Plan
from sopdsl.syntax.loader import display_path

KINDS = ("playbook", "trigger", "step", "branch")


@dataclass
class Item:
    """One thing a fixture can exercise, at a line of a playbook file."""

    path: str  # the file, as shown
    line: int
    kind: str  # one of KINDS
    playbook: str
    what: str
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        """The item for machines."""
        return {
            "line": self.line,
            "kind": self.kind,
            "playbook": self.playbook,
            "what": self.what,
            "hits": self.hits,
        }


@dataclass
class _Registered:
    """A compiled playbook's items by where a flow is: its start, each step, each edge taken."""

    playbook: Item
    triggers: dict[str, Item]  # by the trigger's loc (a flow's `trigger`)
    entries: dict[int, Item]  # calendar entries, by index
    steps: dict[tuple[int, int], Item]  # (entry, pc)
    edges: dict[tuple[int, int, int], Item]  # (entry, from pc, to pc)


@dataclass
class Coverage:
    """Items of every plan registered, and what the runs recorded."""

    items: dict[tuple[str, int, str, str], Item] = field(default_factory=dict)
    fixtures: dict[str, set[str]] = field(default_factory=dict)  # file -> fixtures that ran it
    _by_id: dict[int, _Registered] = field(default_factory=dict)
    _plans: list[Plan] = field(default_factory=list)  # keeps the registered objects (and ids) alive

    def add_plan(self, plan: Plan, base: Path, fixture: str | None = None) -> None:
        """Register a plan's playbooks (`base`: the folder its locations are relative to) as run by
        `fixture`, or by none (a file no fixture runs)."""
        self._plans.append(plan)
        for compiled in plan.playbooks:
            if id(compiled) in self._by_id:
                continue
            self._by_id[id(compiled)] = self._register(compiled, base)
            path = self._place(compiled.loc, base)[0]
            self.fixtures.setdefault(path, set())
            if fixture is not None:
                self.fixtures[path].add(fixture)

    def ran(self, fixture: str, plan: Plan, base: Path) -> None:
        """Note that `fixture` ran the playbooks of `plan` (already registered)."""
        for compiled in plan.playbooks:
            self.fixtures.setdefault(self._place(compiled.loc, base)[0], set()).add(fixture)

    def recorder(self) -> Callable[[CompiledPlaybook, Flow, int], None]:
        """A step hook for one run of the engine (flow ids are the run's own)."""
        last: dict[int, tuple[int, int]] = {}  # flow id -> (compiled playbook's id, pc)
        by_id = self._by_id

        def record(compiled: CompiledPlaybook, flow: Flow, _now: int) -> None:
            found = by_id.get(id(compiled))
            if found is None:
                return
            pc, entry = flow.pc, flow.entry
            before = last.get(flow.id)
            if before is None or before[0] != id(compiled):
                found.playbook.hits += 1
                start = found.entries.get(entry) if entry >= 0 else found.triggers.get(flow.trigger)
                if start is not None:
                    start.hits += 1
            elif before[1] != pc:
                edge = found.edges.get((entry, before[1], pc))
                if edge is not None:
                    edge.hits += 1
            if before is None or before[1] != pc:
                step = found.steps.get((entry, pc))
                if step is not None:
                    step.hits += 1
            last[flow.id] = (id(compiled), pc)

        return record

    def report(self) -> CoverageReport:
        """What the runs so far covered, per file."""
        files: dict[str, list[Item]] = {}
        for item in self.items.values():
            files.setdefault(item.path, []).append(item)
        return CoverageReport(
            [
                FileCoverage(path, sorted(items, key=_order), sorted(self.fixtures.get(path, ())))
                for path, items in sorted(files.items())
            ]
        )

    # ---- registering ---------------------------------------------------------------------------

    def _item(self, loc: str, base: Path, kind: str, playbook: str, what: str) -> Item:
        path, line = self._place(loc, base)
        key = (path, line, kind, what)
        if key not in self.items:
            self.items[key] = Item(path, line, kind, playbook, what)
        return self.items[key]

    @staticmethod
    def _place(loc: str, base: Path) -> tuple[str, int]:
        name, _, line = loc.rpartition(":")
        return _shown(base, name), int(line) if line.isdigit() else 0

    def _register(self, compiled: CompiledPlaybook, base: Path) -> _Registered:
        pb = compiled
        item = self._item(pb.loc, base, "playbook", pb.name, f"playbook {pb.name}")
        found = _Registered(item, {}, {}, {}, {})
        for trigger in pb.triggers:
            what = f"trigger: {_source_line(base, trigger.loc)}"
            found.triggers[trigger.loc] = self._item(trigger.loc, base, "trigger", pb.name, what)
        for index, calendar in enumerate(pb.schedule):
            what = f"calendar entry: {_source_line(base, calendar.loc)}"
            found.entries[index] = self._item(calendar.loc, base, "trigger", pb.name, what)
        for entry, code in [(-1, compiled.code), *enumerate(e.code for e in compiled.schedule)]:
            for pc, instr in enumerate(code):
                if instr.op == "jump":
                    continue
                what = _source_line(base, instr.loc)
                found.steps[(entry, pc)] = self._item(instr.loc, base, "step", pb.name, what)
                for target, label in _branches(code, pc, instr):
                    edge = self._item(instr.loc, base, "branch", pb.name, f"{label} of: {what}")
                    found.edges[(entry, pc, target)] = edge
        return found


def _branches(code: tuple[Instr, ...], pc: int, instr: Instr) -> list[tuple[int, str]]:
    """The ways out of an instruction that are branches: (where to, what the branch is)."""
    match instr.op:
        case "branch":
            assert instr.jump is not None
            # Each test of an `if ... else if ...` chain carries the `if`'s line: number them.
            earlier = sum(1 for other in code[:pc] if other.op == "branch" and other.loc == instr.loc)
            ways = [(pc + 1, f"`else if` number {earlier} holds" if earlier else "`if` holds")]
            follows = instr.jump < len(code) and code[instr.jump].op == "branch"
            if not (follows and code[instr.jump].loc == instr.loc):
                ways.append((instr.jump, "`else` (no condition holds)"))
            return ways
        case "wait_for":
            assert instr.jump is not None
            return [(pc + 1, "`then` (it happened in time)"), (instr.jump, "`else` (the time ran out)")]
        case "assign":
            assert instr.jump is not None
            return [(pc + 1, "`then` (done in time)"), (instr.jump, "`else` (not done in time)")]
        case "split":
            return [(arm.pc, f"arm {arm.name}") for arm in instr.arms]
        case _:
            return []


def _order(item: Item) -> tuple[int, int, str]:
    return item.line, KINDS.index(item.kind), item.what


@cache
def _shown(base: Path, name: str) -> str:
    return display_path((base / name).resolve()) if name and not name.startswith("<") else name


@cache
def _lines(path: Path) -> tuple[str, ...]:
    try:
        return tuple(path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()


def _source_line(base: Path, loc: str) -> str:
    """The text of a playbook line, to name a step or trigger by what it says."""
    name, _, line = loc.rpartition(":")
    lines = _lines((base / name).resolve())
    number = int(line) if line.isdigit() else 0
    text = lines[number - 1].split("#")[0].strip() if 0 < number <= len(lines) else loc
    return text if len(text) <= 60 else text[:59] + "…"


@dataclass
class FileCoverage:
    """One playbook file's items, and the fixtures that ran it."""

    path: str
    items: list[Item]
    fixtures: list[str]

    @property
    def covered(self) -> int:
        """Items exercised at least once."""
        return sum(1 for item in self.items if item.hits)

    @property
    def missed(self) -> list[Item]:
        """Items no fixture exercised."""
        return [item for item in self.items if not item.hits]


@dataclass
class CoverageReport:
    """Coverage of every file, with the totals."""

    files: list[FileCoverage]

    @property
    def total(self) -> int:
        """How many items there are."""
        return sum(len(f.items) for f in self.files)

    @property
    def covered(self) -> int:
        """How many were exercised."""
        return sum(f.covered for f in self.files)

    @property
    def percent(self) -> float:
        """The share exercised, in percent (100 with nothing to exercise)."""
        return 100.0 * self.covered / self.total if self.total else 100.0

    def lines(self) -> list[str]:
        """The report for people: a line per file, then what it missed."""
        out = ["coverage (playbooks, triggers, steps, branches exercised by the fixtures):"]
        for f in self.files:
            share = _percent(f.covered, len(f.items))
            out.append(f"  {f.path}  {share} ({f.covered}/{len(f.items)})")
            if not f.fixtures:
                out.append("    no fixture runs this file")
            out.extend(
                f"    line {item.line}: {item.kind} not exercised: {item.what}"
                for item in f.missed
                if f.fixtures or item.kind == "playbook"
            )
        out.append(f"  total {_percent(self.covered, self.total)} ({self.covered}/{self.total})")
        return out

    def to_json(self) -> dict[str, Any]:
        """The report for machines."""
        return {
            "percent": round(self.percent, 2),
            "covered": self.covered,
            "total": self.total,
            "files": [
                {
                    "path": f.path,
                    "fixtures": f.fixtures,
                    "covered": f.covered,
                    "total": len(f.items),
                    "items": [item.to_json() for item in f.items],
                }
                for f in self.files
            ],
        }

    def cobertura(self) -> str:
        """The report as Cobertura XML: a class per file, a line per playbook line with items,
        its hits the fewest of its steps', its branches as condition coverage."""
        classes: list[str] = []
        valid = hit = branches = taken = 0
        for f in self.files:
            rows: list[str] = []
            by_line: dict[int, list[Item]] = {}
            for item in f.items:
                by_line.setdefault(item.line, []).append(item)
            for line, items in sorted(by_line.items()):
                plain = [i for i in items if i.kind != "branch"] or items
                arms = [i for i in items if i.kind == "branch"]
                hits = min(i.hits for i in plain)
                valid, hit = valid + 1, hit + (hits > 0)
                row = f'<line number="{line}" hits="{hits}"'
                if arms:
                    done = sum(1 for i in arms if i.hits)
                    branches, taken = branches + len(arms), taken + done
                    share = round(100 * done / len(arms))
                    row += f' branch="true" condition-coverage="{share}% ({done}/{len(arms)})"'
                rows.append(row + "/>")
            line_rate, branch_rate = _rate(f.items, "branch", False), _rate(f.items, "branch", True)
            classes.append(
                f'<class name={_attr(f.path)} filename={_attr(f.path)} line-rate="{line_rate}" '
                f'branch-rate="{branch_rate}" complexity="0"><methods/><lines>{"".join(rows)}</lines></class>'
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<coverage line-rate="{hit / valid if valid else 1:.4f}" '
            f'branch-rate="{taken / branches if branches else 1:.4f}" lines-covered="{hit}" '
            f'lines-valid="{valid}" branches-covered="{taken}" branches-valid="{branches}" '
            'complexity="0" version="sopdsl" timestamp="0">\n'
            "<sources><source>.</source></sources>\n"
            f'<packages><package name="playbooks" line-rate="{hit / valid if valid else 1:.4f}" '
            f'branch-rate="{taken / branches if branches else 1:.4f}" complexity="0"><classes>\n'
            + "\n".join(classes)
            + "\n</classes></package></packages>\n</coverage>\n"
        )


def _rate(items: Iterable[Item], kind: str, of_kind: bool) -> str:
    chosen = [i for i in items if (i.kind == kind) == of_kind]
    return f"{sum(1 for i in chosen if i.hits) / len(chosen):.4f}" if chosen else "1.0000"


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "100.0%"


def _attr(text: str) -> str:
    return saxutils.quoteattr(text)
