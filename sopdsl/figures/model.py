"""The figures of a run: per group per day (reach, activity, growth, conversion) and per playbook
(flows, actions by kind and status), with their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

NO_GROUP = "-"  # where an event or action that names no group is counted

# The families of per-group figures, each with its figures in the order shown: their JSON names.
FAMILIES: dict[str, tuple[str, ...]] = {
    "reach": ("deliveries", "reached"),
    "activity": ("posters", "messages"),
    "growth": ("joins", "leaves", "removed", "net"),
    "conversion": ("orders", "buyers", "amount"),
}

# What each figure counts, in the words the report shows.
LABELS: dict[str, str] = {
    "deliveries": "送达条数",
    "reached": "触达人数",
    "posters": "发言人数",
    "messages": "消息条数",
    "joins": "入群",
    "leaves": "退群",
    "removed": "移出",
    "net": "净增",
    "orders": "订单数",
    "buyers": "下单人数",
    "amount": "金额",
}
FAMILY_LABELS = {"reach": "触达", "activity": "活跃", "growth": "增长", "conversion": "转化"}


class GroupDay(msgspec.Struct, frozen=True, gc=False):
    """One group's figures on one local day (a frozen struct, made in C: a run of 100k members
    over 90 days makes 22,500 of them, where a frozen dataclass's `__init__` costs ten
    `object.__setattr__` calls each, 2.2 µs against 0.24 µs).

    reach: sends done to members or the group (not to its operator), and the distinct members
    they reached (a post to the group reaches everyone in it then); activity: members who
    posted, and messages; growth: joins, leaves, members removed by a done kick, net change;
    conversion: orders, distinct buyers, and the sum of the orders' amounts.
    """

    deliveries: int = 0
    reached: int = 0
    posters: int = 0
    messages: int = 0
    joins: int = 0
    leaves: int = 0
    removed: int = 0
    orders: int = 0
    buyers: int = 0
    amount: float = 0

    @property
    def net(self) -> int:
        """Members gained that day: joins less leaves and removals."""
        return self.joins - self.leaves - self.removed

    def plus(self, other: GroupDay) -> GroupDay:
        """Both counts added (for a group's day met again after it was settled, which the
        engine's clock rules out; see `Collector._settle`)."""
        return GroupDay(*(getattr(self, f) + getattr(other, f) for f in _FIELDS))

    def family(self, name: str) -> dict[str, int | float]:
        """One family's figures by their JSON names."""
        return {figure: number(getattr(self, figure)) for figure in FAMILIES[name]}


_FIELDS = tuple(f for figures in FAMILIES.values() for f in figures if f != "net")
assert _FIELDS == GroupDay.__struct_fields__, "GroupDay's fields are the families' figures"


@dataclass(frozen=True, slots=True)
class FlowFigures:
    """One playbook's runs: flows started, completed (past their last step or at a `stop`),
    exited early (the member left, an exit condition, a `when` that failed mid-flow, a plan
    change) and still running at the end; its actions by kind, then by status."""

    started: int = 0
    completed: int = 0
    exited: int = 0
    running: int = 0
    actions: dict[str, dict[str, int]] = field(default_factory=dict)
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)  # goal → its figures (`goals.py`)


@dataclass(frozen=True)
class Figures:
    """A run's figures: the local days it spans, the groups (id to name), each group's figures
    per day, each playbook's, and the actions each playbook decided per day."""

    zone: str
    days: list[str]
    names: dict[str, str]
    groups: dict[str, dict[str, GroupDay]]
    playbooks: dict[str, FlowFigures]
    daily_actions: dict[str, dict[str, int]] = field(default_factory=dict)
    experiments: list[dict[str, Any]] = field(default_factory=list)  # per split playbook and goal

    def family(self, name: str) -> dict[str, dict[str, dict[str, int | float]]]:
        """One family of per-group figures: group → day → figure → value."""
        return {
            group: {day: cell.family(name) for day, cell in days.items()}
            for group, days in self.groups.items()
        }

    def flows_json(self) -> dict[str, Any]:
        """The per-playbook figures as JSON-ready data."""
        return {
            name: {
                "flows": {
                    "started": f.started,
                    "completed": f.completed,
                    "exited": f.exited,
                    "running": f.running,
                },
                "actions": f.actions,
                **({"goals": f.goals} if f.goals else {}),  # only a playbook that declares goals
            }
            for name, f in self.playbooks.items()
        }

    def to_json(self) -> dict[str, Any]:
        """Everything as JSON-ready data: per group, each day's families."""
        return {
            "zone": self.zone,
            "days": self.days,
            "groups": {
                group: {
                    "name": self.names.get(group, group),
                    "days": {
                        day: {family: cell.family(family) for family in FAMILIES}
                        for day, cell in days.items()
                    },
                }
                for group, days in self.groups.items()
            },
            "playbooks": self.flows_json(),
            "daily_actions": self.daily_actions,
            "experiments": self.experiments,
        }


def number(value: float) -> int | float:
    """Whole amounts as integers, so JSON shows 30, not 30.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
