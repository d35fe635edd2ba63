"""The group calendar (群日历): every scheduled entry of a plan per declared group in a date range.

Input: a `Plan` and a local date range. Output: sorted `Slot`s, printable as a table or written
as an iCalendar file. Reads the same calendar arithmetic the engine fires by.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.plan import CompiledPlaybook, Instr, Plan, timeutil
from sopdsl.plan.quiet import QUIET_KINDS, quiet_until


@dataclass(frozen=True, order=True)
class Slot:
    """One scheduled entry firing: when, in which group, from which playbook, doing what, on
    which channel, under which caps (indices into the policy's caps)."""

    time: int
    group: str
    playbook: str
    what: str
    loc: str
    zone: str = ""
    caps: tuple[int, ...] = ()
    source: str = ""  # where the group comes from when the playbooks do not declare it: a fixture
    # When quiet hours hold the entry's sends back, the instant they really go out (`time` stays
    # the calendar's own, which the caps' check and the iCalendar UIDs keep to).
    quiet_until: int | None = None
    words: str = ""  # `what` in plain words, for a reader of the report (`plain`)
    # Set by the engine's delivery policy played over the calendar (`engine.agenda_policy`):
    # when the entry's actions have all gone out, if the policy moved them, and why (its words).
    moved_to: int | None = None
    moved_by: str = ""
    dropped: str = ""  # why the policy dropped an action of the entry (a cap that drops), if it did

    @property
    def sends_at(self) -> int:
        """When the entry's sends go out: at its time, or when the policy (quiet hours, a cap
        that defers) lets them out."""
        if self.moved_to is not None:
            return self.moved_to
        return self.time if self.quiet_until is None else self.quiet_until

    @property
    def moved_why(self) -> str:
        """Why the entry's sends go out after its time, in the policy's words, or "" if they do not."""
        if self.moved_by:
            return self.moved_by
        return "quiet hours" if self.quiet_until is not None else ""


# The cap noun each capped action kind counts (as the engine's policy counts them).
_NOUNS = {
    "send": lang.CapNoun.SEND,
    "kick": lang.CapNoun.KICK,
    "grant": lang.CapNoun.COUPON,
    "invite": lang.CapNoun.INVITE,
}


def in_scope(scope: lang.Scope, group: lang.Group) -> bool:
    """Whether a playbook of this scope runs in the group (never for private chats)."""
    return _in_scope(scope.kind, scope.tags, scope.groups, group.name, group.tags)


def _in_scope(
    kind: str, tags: tuple[str, ...], groups: tuple[str, ...], name: str, group_tags: tuple[str, ...]
) -> bool:
    if kind == "all":
        return True
    if kind == "named":
        return name in groups
    if kind == "tagged":
        return not set(tags).isdisjoint(group_tags)
    return False


def agenda(
    plan: Plan,
    start: dt.date,
    end: dt.date,
    groups: Iterable[lang.Group] | None = None,
    fallback: Mapping[str, Iterable[lang.Group]] | None = None,
) -> list[Slot]:
    """Every firing of every calendar entry for each declared group (or the `groups` given),
    from `start` up to `end` (exclusive). A playbook no such group is in scope of (one that names
    only tags) runs over the `fallback` groups instead, each keyed by where it comes from."""
    program = plan.declarations
    chosen = list(program.groups.values() if groups is None else groups)
    extra = [(source, group) for source, found in (fallback or {}).items() for group in found]
    titles = {t.name: t.title or t.name for t in program.templates.values()}
    slots: list[Slot] = []
    for pb in plan.playbooks:
        if not pb.schedule:
            continue
        scope = pb.scope
        mine = [("", g) for g in chosen if _in_scope(scope.kind, scope.tags, scope.groups, g.name, g.tags)]
        if not mine:  # first come first: a group several fixtures share is shown once
            found = {g.name: (source, g) for source, g in reversed(extra)}
            mine = [
                (source, g)
                for source, g in found.values()
                if _in_scope(scope.kind, scope.tags, scope.groups, g.name, g.tags)
            ]
        for entry in pb.schedule:
            actions = [i.action for i in entry.code if i.action is not None]
            what = ", ".join(_describe(a) for a in actions) or "steps"
            words = plain(entry.code, titles)
            caps = _caps(program.policy.caps, actions, entry.for_each_member)
            quiet = any(getattr(a, "kind", "") in QUIET_KINDS for a in actions)
            rule = program.calendars[entry.when.calendar].rule if entry.when.calendar else entry.when.inline
            assert rule is not None
            for source, group in mine:
                zone = group.timezone or program.timezone
                tz = timeutil.zone(zone)
                for due in firings(pb, entry.when, rule, tz, start, end):
                    held = quiet_until(program.policy, due, tz) if quiet else None
                    slots.append(
                        Slot(due, group.name, pb.name, what, entry.loc, zone, caps, source, held, words)
                    )
    return sorted(slots)


def firings(
    pb: CompiledPlaybook,
    when: lang.CalRef,
    rule: lang.CalendarRule,
    tz: ZoneInfo,
    start: dt.date,
    end: dt.date,
) -> Iterator[int]:
    """Each instant a calendar entry of `pb` fires in zone `tz`, from local day `start` up to
    `end` (exclusive), as the engine fires it: the calendar's arithmetic, inside the campaign window."""
    after = timeutil.resolve(dt.datetime.combine(start, dt.time()), tz) - 1
    limit = timeutil.resolve(dt.datetime.combine(end, dt.time()), tz)
    while True:
        due = timeutil.next_fire(rule, when.offsets, when.at, tz, after)
        if due is None or due >= limit:
            return
        # Outside its campaign window the engine fires nothing (`active from …`).
        if pb.active_at(timeutil.local(due, tz)):
            yield due
        after = due


def _caps(caps: Sequence[lang.Cap], actions: list[lang.Action], each_member: bool) -> tuple[int, ...]:
    """The policy's caps that count an entry's actions: same kind, same channel (or none), and a
    subject the action has (a group send counts against group caps, a member's against member caps)."""
    applying: list[int] = []
    for index, cap in enumerate(caps):
        for action in actions:
            kind = getattr(action, "kind", "")
            if _NOUNS.get(kind) is not cap.noun:
                continue
            if cap.channel is not None and cap.channel != getattr(action, "channel", None):
                continue
            to_member = each_member or getattr(action, "target", "group") in ("member", "referrer")
            if cap.subject is lang.CapSubject.MEMBER and not to_member:
                continue
            applying.append(index)
            break
    return tuple(applying)


def _parts(action: object) -> tuple[str, str, str, str | None]:
    """What both descriptions of an action say: its kind, what it sends, grants or invites to (a
    call's action), whom, and on which channel; read in one place so the two cannot disagree."""
    if isinstance(action, lang.CallStep):
        return "call", action.action, "", None
    detail = (
        getattr(action, "template", None) or getattr(action, "coupon", None) or getattr(action, "group", None)
    )
    return (
        getattr(action, "kind", ""),
        detail or "",
        getattr(action, "target", ""),
        getattr(action, "channel", None),
    )


def _describe(action: object) -> str:
    kind, detail, target, channel = _parts(action)
    if kind == "call":
        return f"call {detail}"
    via = f" via {channel}" if channel else ""
    return f"{kind} {detail} to {target}{via}".replace("  ", " ").strip()


# Whom an action is for, as an operator says it.
_WHOM = {"member": "成员", "group": "群", "operator": "运营", "referrer": "推荐人", "owner": "客户负责人"}


def plain(code: Sequence[Instr], titles: Mapping[str, str]) -> str:
    """What an entry's code does in plain words (`titles`: a template's title by name): its actions
    in order, a split as its arms with their shares, the control arm included."""
    return _plain_range(code, 0, len(code), titles) or "（没有动作）"


def _plain_range(code: Sequence[Instr], start: int, end: int, titles: Mapping[str, str]) -> str:
    said: list[str] = []
    pc = start
    while pc < end:
        instr = code[pc]
        if instr.op == "split" and instr.arms:
            stops, join = _split_ends(code, pc)
            arms = [
                f"{'对照组 ' if arm.control else ''}{arm.name} {arm.percent:g}%："
                f"{_plain_range(code, arm.pc, stop, titles) or '不做动作'}"
                for arm, stop in zip(instr.arms, stops, strict=True)
            ]
            said.append("分组实验（" + "；".join(arms) + "）")
            pc = join
            continue
        if instr.action is not None:
            said.append(_plain_action(instr.action, titles))
        elif instr.op == "assign":  # a staff task: no action of the engine's, but what staff will do
            whom = _WHOM["owner" if instr.to == "owner" else "operator"]
            said.append(f"给{whom}派任务「{instr.text or ''}」")
        pc += 1
    return "，".join(said)


def actions_in_order(code: Sequence[Instr]) -> list[lang.Action]:
    """The actions one run of an entry's code does, in order: at a split, those of its first arm
    that has any (one member goes down one arm; a control arm does nothing to show)."""
    return _actions_range(code, 0, len(code))


def _actions_range(code: Sequence[Instr], start: int, end: int) -> list[lang.Action]:
    found: list[lang.Action] = []
    pc = start
    while pc < end:
        instr = code[pc]
        if instr.op == "split" and instr.arms:
            stops, join = _split_ends(code, pc)
            arms = (_actions_range(code, arm.pc, stop) for arm, stop in zip(instr.arms, stops, strict=True))
            found += next((taken for taken in arms if taken), [])
            pc = join
            continue
        if instr.action is not None:
            found.append(instr.action)
        pc += 1
    return found


def _split_ends(code: Sequence[Instr], at: int) -> tuple[list[int], int]:
    """Where each arm of the split at `at` ends (its exit jump) and where the code goes on after
    it, as `compiler._emit_split` lays it out: each arm's steps, then a jump to after the last."""
    arms = code[at].arms
    if len(arms) > 1:  # an arm's exit jump is just before the next arm
        stops = [arm.pc - 1 for arm in arms[1:]]
        join = code[stops[0]].jump
        assert join is not None
        return [*stops, join - 1], join
    # One arm: its exit is the first jump of the split's line to the next instruction, past any
    # split nested in it (whose exits look the same).
    pc = arms[0].pc
    while not (code[pc].op == "jump" and code[pc].loc == code[at].loc and code[pc].jump == pc + 1):
        pc = _split_ends(code, pc)[1] if code[pc].op == "split" and code[pc].arms else pc + 1
    return [pc], pc + 1


def _plain_action(action: lang.Action, titles: Mapping[str, str]) -> str:
    _, detail, target, channel = _parts(action)
    whom = _WHOM.get(target, target)
    via = f"（经 {channel}）" if channel else ""
    match action:
        case lang.SendStep():
            return f"发送「{titles.get(detail, detail)}」给{whom}{via}"
        case lang.TagStep():
            return f"给{whom}{'去掉' if action.remove else '加上'}标签「{'、'.join(action.tags)}」"
        case lang.KickStep():
            return f"将{whom}移出群"
        case lang.GrantStep():
            return f"给{whom}发券「{detail}」"
        case lang.InviteStep():
            return f"邀请{whom}进群「{detail}」"
        case lang.AddStep():
            return f"{_WHOM.get(action.root, action.root)}的 {action.counter} 加 {action.amount:g}"
        case lang.SetStep():
            return f"设置{_WHOM.get(action.root, action.root)}的 {action.attribute}"
        case lang.CallStep():
            return f"调用 {detail}"
        case lang.DissolveStep():
            return "解散群"
        case lang.DrawStep():
            return f"抽奖 {action.count} 人"
        case _:
            assert_never(action)


def uid(slot: Slot) -> str:
    """A calendar event's UID: what fires, where and when, and nothing else, so editing another
    line of the playbooks (or this entry's template text) leaves every UID as it was."""
    key = f"{slot.playbook}\0{slot.group}\0{slot.what}\0{slot.time}"
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@sopdsl"


def to_ics(slots: list[Slot], plan: Plan, stamp: dt.datetime) -> bytes:
    """The slots as an iCalendar (RFC 5545) file through `icalendar`: one event per slot, its
    start in the group's own zone (with a VTIMEZONE), lines folded; `stamp` (UTC) is DTSTAMP,
    when the file was made."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//sopdsl//group calendar//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    caps = plan.declarations.policy.caps
    for slot in slots:
        event = Event()
        event.add("uid", uid(slot))
        event.add("dtstamp", stamp)
        event.add("dtstart", dt.datetime.fromtimestamp(slot.sends_at, timeutil.zone(slot.zone)))
        event.add("summary", f"{slot.playbook}: {slot.what}")
        event.add("location", slot.group)
        notes = [slot.loc, *(f"cap: {caps[i].text()} ({caps[i].loc})" for i in slot.caps)]
        if slot.moved_why:
            notes.append(
                f"moved by {slot.moved_why} from {timeutil.iso(slot.time, timeutil.zone(slot.zone))}"
            )
        if slot.dropped:
            notes.append(f"dropped: {slot.dropped}")
        if slot.source:
            notes.append(f"group from {slot.source}")
        event.add("description", "\n".join(notes))
        calendar.add_component(event)
    if slots:  # each VTIMEZONE covers the calendar's span (icalendar's default ends in 2038)
        first = dt.datetime.fromtimestamp(slots[0].time, dt.UTC).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(slots[-1].time, dt.UTC).date() + dt.timedelta(days=2)
        calendar.add_missing_timezones(first_date=first, last_date=last)
    return bytes(calendar.to_ical())
