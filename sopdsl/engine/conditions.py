"""Checked conditions to Python closures, compiled once when a plan loads.

A closure takes (member, group, event data, now, zone) and answers True or False. A missing
value (an attribute never set, an event field absent) makes a test false, never an error.
Coupon stock is the engine's, not the member's: `coupon X in stock` asks a `Stock` function
given at compile time (the engine's delivery counters) at the moment the test runs.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.calc import compile_operand
from sopdsl.engine.state import NONE, GroupState, MemberState
from sopdsl.plan import CompiledPlaybook, timeutil

Test = Callable[[MemberState | None, GroupState | None, dict[str, Any], int, ZoneInfo], bool]
Getter = Callable[[MemberState | None, GroupState | None, dict[str, Any]], Any]
Referrer = Callable[[str], MemberState | None]
# Units of a coupon's stock still to grant, or None for a coupon declared without a stock.
Stock = Callable[[str], int | None]


def _unlimited(coupon: str) -> int | None:
    return None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def getter(ref: lang.Ref, referrer: Referrer, counters: frozenset[str] = frozenset()) -> Getter:
    """A function reading a reference's value from the evaluation context."""
    name = ref.field
    if ref.root == "member" and name in counters:
        return lambda m, g, e: m.counters.get(name, 0.0) if m is not None else None
    if ref.root == "member":
        return lambda m, g, e: m.field_value(name) if m is not None else None
    if ref.root == "referrer":
        unset = 0.0 if name in counters else None

        def read(m: MemberState | None, g: GroupState | None, e: dict[str, Any]) -> Any:
            other = referrer(m.referrer) if m is not None and m.referrer else None
            if other is None:
                return None
            value = other.field_value(name)
            return unset if value is None else value

        return read
    if ref.root == "group":
        return lambda m, g, e: g.field_value(name) if g is not None else None
    return lambda m, g, e: e.get(name)


def _normalize(value: Any, kind: lang.ValueType) -> Any:
    if kind is lang.ValueType.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _all(parts: list[Test]) -> Test:
    """`all` over the parts, in order, stopping at the first false one; two parts (most `and`s)
    without a generator."""
    if len(parts) == 2:
        a, b = parts
        return lambda m, g, e, now, tz: True if a(m, g, e, now, tz) and b(m, g, e, now, tz) else False
    return lambda m, g, e, now, tz: all(p(m, g, e, now, tz) for p in parts)


def _any(parts: list[Test]) -> Test:
    """`any` over the parts, in order, stopping at the first true one (two without a generator)."""
    if len(parts) == 2:
        a, b = parts
        return lambda m, g, e, now, tz: True if a(m, g, e, now, tz) or b(m, g, e, now, tz) else False
    return lambda m, g, e, now, tz: any(p(m, g, e, now, tz) for p in parts)


def compile_cond(
    cond: lang.Cond,
    referrer: Referrer,
    counters: frozenset[str] = frozenset(),
    stock: Stock = _unlimited,
) -> Test:
    """Compile a checked condition into a closure; `counters` (built-in and declared) read 0 when
    unset; `stock` answers how many of a coupon are left (by default: every coupon is unlimited)."""
    if isinstance(cond, lang.ConstCond):
        value = cond.value
        return lambda m, g, e, now, tz: value
    if isinstance(cond, lang.NotCond):
        inner = compile_cond(cond.operand, referrer, counters, stock)
        return lambda m, g, e, now, tz: not inner(m, g, e, now, tz)
    if isinstance(cond, lang.AndCond | lang.OrCond):
        parts = [compile_cond(c, referrer, counters, stock) for c in cond.operands]
        return _all(parts) if isinstance(cond, lang.AndCond) else _any(parts)
    if isinstance(cond, lang.StockCond):
        coupon, wanted = cond.coupon, cond.in_stock

        def in_stock(
            m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo
        ) -> bool:
            left = stock(coupon)
            return (left is None or left > 0) is wanted

        return in_stock
    if isinstance(cond, lang.TagCond):
        return _tags(cond)
    if isinstance(cond, lang.CompareCond):
        read = getter(cond.left, referrer, counters)
        op = _OPS[cond.op]
        kind = cond.left.type
        if isinstance(cond.right, lang.Ref):
            other = getter(cond.right, referrer, counters)

            def compare_refs(
                m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo
            ) -> bool:
                left, right = read(m, g, e), other(m, g, e)
                return left is not None and right is not None and _safe(op, left, right)

            return compare_refs
        right = _normalize(cond.right, kind)

        def compare(
            m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo
        ) -> bool:
            left = read(m, g, e)
            return left is not None and _safe(op, _normalize(left, kind), right)

        return compare
    if isinstance(cond, lang.CalcCond):
        return _calc(cond, referrer, counters)
    if isinstance(cond, lang.StartsWithCond):
        read = getter(cond.left, referrer, counters)
        prefix = cond.prefix
        return lambda m, g, e, now, tz: str(read(m, g, e) or "").startswith(prefix)
    if isinstance(cond, lang.MatchesCond):
        read = getter(cond.left, referrer, counters)
        pattern = re.compile(cond.pattern)
        return lambda m, g, e, now, tz: pattern.search(str(read(m, g, e) or "")) is not None
    if isinstance(cond, lang.InCond):
        read = getter(cond.left, referrer, counters)
        kind = cond.left.type
        values = {_normalize(v, kind) for v in cond.values}
        return lambda m, g, e, now, tz: _normalize(read(m, g, e), kind) in values
    if isinstance(cond, lang.IsSetCond):
        read = getter(cond.left, referrer, counters)
        return lambda m, g, e, now, tz: read(m, g, e) not in (None, "")
    if isinstance(cond, lang.WindowCond):
        return _window(cond)
    if isinstance(cond, lang.TimeCond):
        start, end = cond.start, cond.end

        def between(
            m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo
        ) -> bool:
            moment = timeutil.local_time(now, g.zone if g is not None else tz)
            return start <= moment < end if start <= end else (moment >= start or moment < end)

        return between
    if isinstance(cond, lang.DateCond):
        spans = cond.spans
        return lambda m, g, e, now, tz: lang.on_any(
            spans, timeutil.local_date(now, g.zone if g is not None else tz)
        )
    days = frozenset(cond.weekdays)
    return lambda m, g, e, now, tz: (
        timeutil.local_date(now, g.zone if g is not None else tz).weekday() in days
    )


def _calc(cond: lang.CalcCond, referrer: Referrer, counters: frozenset[str]) -> Test:
    """A comparison with arithmetic: false when a side is unset; an arithmetic error raises (see
    `engine/calc.py`), which the caller records as a failed test."""
    left = compile_operand(cond.left, lambda ref: getter(ref, referrer, counters))
    right = compile_operand(cond.right, lambda ref: getter(ref, referrer, counters))
    op = _OPS[cond.op]

    def calc(m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo) -> bool:
        a = left(m, g, e)
        if a is None:
            return False
        b = right(m, g, e)
        return b is not None and op(a, b)

    return calc


def _safe(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    try:
        return op(left, right)
    except TypeError:
        return False


def _tags(cond: lang.TagCond) -> Test:
    wanted = frozenset(cond.tags)
    member = cond.subject == "member"

    def tags(m: MemberState | None, g: GroupState | None) -> AbstractSet[str]:
        holder = m if member else g
        return holder.tags if holder is not None else NONE

    if cond.test == "tagged" or cond.test == "any":
        return lambda m, g, e, now, tz: not wanted.isdisjoint(tags(m, g))
    if cond.test == "all":
        return lambda m, g, e, now, tz: wanted <= tags(m, g)
    return lambda m, g, e, now, tz: wanted.isdisjoint(tags(m, g))


def _window(cond: lang.WindowCond) -> Test:
    kind = cond.event
    duration = cond.window
    op = _OPS[cond.op]
    count = cond.count

    def window(
        m: MemberState | None, g: GroupState | None, e: dict[str, Any], now: int, tz: ZoneInfo
    ) -> bool:
        if m is None:
            return False
        times = m.windows.get(kind)
        if not times:
            return op(0, count)
        return op(in_window(times, duration, now, g.zone if g else tz), count)

    return window


def in_window(times: Iterable[int], duration: lang.Duration, now: int, zone: ZoneInfo) -> int:
    """How many of a member's kept event `times` fall in the window of `duration` ending at `now`
    (what a window condition counts; `sopdsl why` shows it)."""
    # `in last 1 year` is a calendar year (same wall time a year ago), as durations are elsewhere.
    since = now - timeutil.seconds(duration) if duration.exact else timeutil.add(now, duration, zone, sign=-1)
    return sum(1 for t in times if t > since)


def window_kinds(cond: lang.Cond | None) -> set[str]:
    """Event kinds that some window condition inside `cond` counts (the engine keeps only those)."""
    found: set[str] = set()
    stack: list[Any] = [cond] if cond is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, lang.WindowCond):
            found.add(item.event)
        elif isinstance(item, lang.NotCond):
            stack.append(item.operand)
        elif isinstance(item, lang.AndCond | lang.OrCond):
            stack.extend(item.operands)
    return found


def playbook_windows(compiled: CompiledPlaybook) -> set[str]:
    """Event kinds some window condition of a compiled playbook counts: its guard, branches, entries."""
    found = window_kinds(compiled.guard)
    for instr in (*compiled.code, *(i for entry in compiled.schedule for i in entry.code)):
        found |= window_kinds(instr.cond)
    for entry in compiled.schedule:
        found |= window_kinds(entry.cond)
    return found
