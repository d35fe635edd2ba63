"""The builders of a playbook: its settings, `at` entries, scopes, triggers and conditions."""

from __future__ import annotations

from typing import Any

from sopdsl.source import Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.building import _all, _Block, _of


class PlaybookBuilders:
    """One method per grammar rule of a playbook item, trigger or condition (`transformer._Builders`)."""

    # ---- playbooks ----

    def playbook_decl(self, span: Span, children: list[Any]) -> n.PlaybookDecl:
        title = children[1] if len(children) > 1 and isinstance(children[1], n.Str) else None
        items = tuple(children[2:] if title is not None else children[1:])
        return n.PlaybookDecl(children[0], title, items, span)

    def pb_scenario(self, span: Span, children: list[Any]) -> n.ScenarioSetting:
        return n.ScenarioSetting(tuple(children[0]), span)

    def pb_scope(self, span: Span, children: list[Any]) -> n.ScopeSetting:
        return n.ScopeSetting(children[0], span)

    def pb_on(self, span: Span, children: list[Any]) -> n.OnSetting:
        return n.OnSetting(children[0], span)

    def pb_when(self, span: Span, children: list[Any]) -> n.WhenSetting:
        return n.WhenSetting(children[0], span)

    def repeat_once(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.ONCE, None, span)

    def repeat_always(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.ALWAYS, None, span)

    def repeat_after(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.COOLDOWN, children[0], span)

    def pb_apply(self, span: Span, children: list[Any]) -> n.ApplySetting:
        return n.ApplySetting(children[0], span)

    def pb_missed(self, span: Span, children: list[Any]) -> n.MissedSetting:
        return n.MissedSetting(tuple(c for c in children if c is not None), span)

    def pb_change(self, span: Span, children: list[Any]) -> n.ChangeSetting:
        return n.ChangeSetting(children[0], span)

    def pb_active(self, span: Span, children: list[Any]) -> n.ActiveSetting:
        return n.ActiveSetting(children[0], children[1], span)

    def pb_version(self, span: Span, children: list[Any]) -> n.VersionSetting:
        return n.VersionSetting(children[0], span)

    def pb_author(self, span: Span, children: list[Any]) -> n.AuthorSetting:
        return n.AuthorSetting(children[0], span)

    def pb_reviewed(self, span: Span, children: list[Any]) -> n.ReviewSetting:
        return n.ReviewSetting(tuple(children[0]), span)

    def goal_when(self, span: Span, children: list[Any]) -> tuple[str, Any]:
        return ("when", children[0])

    def pb_goal(self, span: Span, children: list[Any]) -> n.GoalSetting:
        cond = next((c[1] for c in children if isinstance(c, tuple) and c and c[0] == "when"), None)
        return n.GoalSetting(children[0], children[1], cond, children[-1], span)

    def pb_do(self, span: Span, children: list[Any]) -> n.DoSetting:
        block: _Block = children[0]
        return n.DoSetting(tuple(block), block.braced, span)

    def for_each(self, span: Span, children: list[Any]) -> str:
        return "for_each"

    def at_when(self, span: Span, children: list[Any]) -> tuple[str, Any]:
        return ("when", children[0])

    def pb_at(self, span: Span, children: list[Any]) -> n.AtEntry:
        block: _Block = children[-1]
        cond = next((c[1] for c in children if isinstance(c, tuple) and c and c[0] == "when"), None)
        return n.AtEntry(children[0], "for_each" in children, cond, tuple(block), block.braced, span)

    def scope_all(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.ALL, (), (), span)

    def scope_tagged(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.TAGGED, tuple(children[0]), (), span)

    def scope_named(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.NAMED, (), tuple(children[0]), span)

    def scope_private(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.PRIVATE, (), (), span)

    def cal_ref(self, span: Span, children: list[Any]) -> n.CalRef:
        at = _of(children, n.Time)
        return n.CalRef(children[0], _all(children, n.CalOffset), at, span)

    def cal_inline(self, span: Span, children: list[Any]) -> n.CalInline:
        return n.CalInline(tuple(children[0]), tuple(children[1]), _of(children, n.CalExcept), span)

    def cal_once(self, span: Span, children: list[Any]) -> n.CalOnce:
        return n.CalOnce(children[0], span)

    def cal_offset(self, span: Span, children: list[Any]) -> n.CalOffset:
        return n.CalOffset(str(children[0]) == "-", children[1], span)

    def at_time(self, span: Span, children: list[Any]) -> n.Time:
        return children[0]  # type: ignore[no-any-return]

    # ---- triggers ----

    def on_event(self, span: Span, children: list[Any]) -> n.OnEvent:
        return n.OnEvent(children[0], span)

    def on_silent(self, span: Span, children: list[Any]) -> n.OnAbsence:
        duration: n.Duration = children[0]
        return n.OnAbsence(n.Name("message", span), duration, span)

    def on_absence(self, span: Span, children: list[Any]) -> n.OnAbsence:
        return n.OnAbsence(children[0], children[1], span)

    def rel_after(self, span: Span, children: list[Any]) -> bool:
        return False

    def rel_before(self, span: Span, children: list[Any]) -> bool:
        return True

    def on_date_offset(self, span: Span, children: list[Any]) -> n.OnDateOffset:
        at = children[3] if len(children) > 3 else None
        return n.OnDateOffset(children[0], children[1], children[2], at, span)

    def on_anniversary(self, span: Span, children: list[Any]) -> n.OnAnniversary:
        return n.OnAnniversary(children[0], children[1], span)

    def on_threshold(self, span: Span, children: list[Any]) -> n.OnThreshold:
        return n.OnThreshold(children[0], children[1], span)

    def on_group_size(self, span: Span, children: list[Any]) -> n.OnGroupSize:
        return n.OnGroupSize(children[0], span)

    def on_group_silent(self, span: Span, children: list[Any]) -> n.OnGroupSilent:
        return n.OnGroupSilent(children[0], span)

    def _event(
        self, span: Span, kind: n.EventKind, tag: n.Str | None = None, custom: n.Name | None = None
    ) -> n.EventPattern:
        return n.EventPattern(kind, tag, custom, span)

    def ev_join(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.JOIN)

    def ev_leave(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.LEAVE)

    def ev_message(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.MESSAGE)

    def ev_order(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.ORDER)

    def ev_invite(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.INVITE)

    def ev_report(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.REPORT)

    def ev_tagged(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.TAGGED, tag=children[0])

    def ev_untagged(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.UNTAGGED, tag=children[0])

    def ev_rename(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.RENAME)

    def ev_custom(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.CUSTOM, custom=children[0])

    # ---- conditions ----

    def or_cond(self, span: Span, children: list[Any]) -> n.Or:
        return n.Or(tuple(children), span)

    def and_cond(self, span: Span, children: list[Any]) -> n.And:
        return n.And(tuple(children), span)

    def not_cond(self, span: Span, children: list[Any]) -> n.Not:
        return n.Not(children[0], span)

    def cond(self, span: Span, children: list[Any]) -> n.Paren:
        # `cond` only stands as its own node where the user wrote `( ... )`.
        return n.Paren(children[0], span)

    def subject_member(self, span: Span, children: list[Any]) -> n.Subject:
        return n.Subject.MEMBER

    def subject_group(self, span: Span, children: list[Any]) -> n.Subject:
        return n.Subject.GROUP

    def tagged(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.TAGGED, (children[1],), span)

    def not_tagged(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.NOT_TAGGED, tuple(children[1]), span)

    def tagged_any(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.ANY, tuple(children[1]), span)

    def tagged_all(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.ALL, tuple(children[1]), span)

    def compare(self, span: Span, children: list[Any]) -> n.Compare:
        return n.Compare(children[0], n.Comparator(str(children[1])), children[2], span)

    def starts_with(self, span: Span, children: list[Any]) -> n.StartsWith:
        return n.StartsWith(children[0], children[1], span)

    def matches(self, span: Span, children: list[Any]) -> n.Matches:
        return n.Matches(children[0], children[1], span)

    def in_list(self, span: Span, children: list[Any]) -> n.InList:
        return n.InList(children[0], tuple(children[1:]), span)

    def is_set(self, span: Span, children: list[Any]) -> n.IsSet:
        return n.IsSet(children[0], span)

    def window_count(self, span: Span, children: list[Any]) -> n.WindowCount:
        return n.WindowCount(children[0], children[1], n.Comparator(str(children[2])), children[3], span)

    def time_between(self, span: Span, children: list[Any]) -> n.TimeBetween:
        return n.TimeBetween(children[0], children[1], span)

    def weekday_in(self, span: Span, children: list[Any]) -> n.WeekdayIn:
        return n.WeekdayIn(tuple(children[0]), span)

    def in_stock(self, span: Span, children: list[Any]) -> n.InStock:
        return n.InStock(children[0], False, span)

    def out_of_stock(self, span: Span, children: list[Any]) -> n.InStock:
        return n.InStock(children[0], True, span)

    def bool_cond(self, span: Span, children: list[Any]) -> n.BoolCond:
        value: n.Bool = children[0]
        return n.BoolCond(value.value, span)
