"""The lines `sopdsl why` tells of one playbook, in order: by time, or run by run when two runs of
it overlap for the member.

Input: what `why` has to tell (`Told`: a decision, a plan change, a wait, an action), each with
the flow it belongs to, if any, and where each flow began. Output: lines for people.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Told:
    """Lines to tell at `time`; `order` ranks what happens at one instant. `flow`: the run they
    are of (None: a decision that started nothing, a plan change); `head`: they tell its start."""

    time: int
    order: int
    lines: list[str]
    flow: int | None = None
    head: bool = False


def arranged(told: list[Told], heads: dict[int, Told]) -> list[str]:
    """The lines of `told` in time order; but when two runs overlap, so that time order would
    interleave their steps, each run's start and then its own steps, runs in order of their start.

    `heads`: for every run (flow id), the lines that tell its start should `told` have none (a
    flow carried over by a plan change). Time order is kept when the runs do not overlap: one
    after the other, it already reads run by run.
    """
    ordered = sorted(told, key=lambda t: (t.time, t.order))
    started = {item.flow: item for item in ordered if item.head and item.flow in heads}
    starts = {flow: started.get(flow, head) for flow, head in heads.items()}
    by_start = sorted(starts, key=lambda flow: (starts[flow].time, starts[flow].order, flow))
    rank = {flow: index for index, flow in enumerate(by_start)}
    if not _interleaved(ordered, rank):
        return [line for item in ordered for line in item.lines]
    # Each run where its start is, among what belongs to none (a decision that started nothing).
    ordered = sorted(
        [*ordered, *(h for f, h in heads.items() if f not in started)], key=lambda t: (t.time, t.order)
    )
    lines: list[str] = []
    for item in ordered:
        if item.flow not in rank:
            lines.extend(item.lines)
        elif item is starts[item.flow]:
            first, *rest = item.lines
            lines.append(f"  run {rank[item.flow] + 1}: {first.lstrip()}")
            lines.extend(rest)
            lines.extend(
                line for step in ordered if step.flow == item.flow and step is not item for line in step.lines
            )
    return lines


def _interleaved(ordered: list[Told], rank: dict[int, int]) -> bool:
    """Whether, in time order, a step of a run comes after a later run has started."""
    latest = -1
    for item in ordered:
        index = rank.get(item.flow) if item.flow is not None else None
        if index is None:
            continue
        if index < latest:
            return True
        latest = max(latest, index)
    return False
