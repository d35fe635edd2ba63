"""Actions: deciding each one, the delivery policy, applying what it changes, the log."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, assert_never
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.calc import Getter, compile_operand
from sopdsl.engine.drawing import _Drawing
from sopdsl.engine.events import Event
from sopdsl.engine.parts import _MAX_CASCADE, _Compiled
from sopdsl.engine.plain import Send, Step, plain_send
from sopdsl.engine.rendering import RenderError, _plain
from sopdsl.engine.state import Flow, GroupState, MemberState, WaitDelivery
from sopdsl.engine.timers import Deliver
from sopdsl.errors import EngineError
from sopdsl.plan import Instr, timeutil

_HELD: Final = WaitDelivery()  # frozen and field-less: one will do for every held action
_APPLIED: Final = frozenset(("grant", "kick", "dissolve"))  # what `_apply` changes anything for


class _Acting(_Drawing):
    """Actions: deciding each one, the delivery policy, applying what it changes, the log."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _act(
        self,
        flow: Flow,
        c: _Compiled,
        plain: Step,
        member: MemberState | None,
        group: GroupState | None,
        tz: ZoneInfo,
    ) -> None:
        step, instr = plain.action, plain.instr
        target_member = member
        to_referrer = self._referrer_steps.get(id(step))
        if to_referrer is None:
            to_referrer = self._to_referrer(step)
        if to_referrer:
            target_member = (
                self.members.get(member.referrer) if member is not None and member.referrer else None
            )
            if target_member is None:
                return  # no referrer: nothing to do
        if c.cannot and step is not None and step.kind in c.cannot:
            self._platform_task(flow, c, instr, target_member, group)  # staff do it (tasks.py)
            return
        # By exact type: an isinstance test against a pydantic model class goes through ABCMeta,
        # several times dearer, and this runs for every action.
        if type(step) is lang.TagStep:
            target, tags, remove = plain.target, plain.tags, plain.remove
            holder: MemberState | GroupState | None = group if target == "group" else target_member
            if holder is None:
                return
            changed = [tag for tag in tags if (tag in holder.tags) == remove]
            if not changed:
                pass
            elif isinstance(holder, MemberState):  # a member's tags are frozen (state.py)
                holder.tags = self.sets.share(
                    holder.tags.difference(changed) if remove else holder.tags.union(changed)
                )
            elif remove:
                holder.tags.difference_update(changed)
            else:
                holder.tags.update(changed)
            key = self._key_for(flow)
            self._emit(
                Action(
                    self.now,
                    "untag" if remove else "tag",
                    c.name,
                    key,
                    holder.id if type(holder) is MemberState else None,
                    flow.group,
                    target,
                    {"tags": list(tags)},
                    "done",
                    None,
                    plain.loc,
                    flow.trigger,
                )
            )
            # The tag action is logged before what it sets off: cause before effect.
            if isinstance(holder, MemberState):
                kind = "untag" if remove else "tag"
                prefix = "untagged:" if remove else "tagged:"  # the event's key, as `_key` makes it
                for tag in changed:
                    # What `_cascade` asks first, asked before an event is made: most tags start nothing.
                    if holder.id in self.waits or prefix + tag in self._event_index or kind in self.windows:
                        self._cascade(
                            Event(
                                kind,
                                self.now,
                                member=holder.id,
                                group=flow.group,
                                name=tag,
                                id=f"{key}:{tag}",
                            )
                        )
                    # else a tag change nothing listens to: its state change is already made
            return
        if type(step) is lang.AddStep:
            if target_member is None:
                return
            before = target_member.counters.get(step.counter, 0.0)
            self._set_counter(flow, target_member, step.counter, before + step.amount)
            return
        if type(step) is lang.SetStep:
            if target_member is not None:
                self._set(flow, c, instr, step, target_member, member, group)
            return
        key = self._key_for(flow)
        # Positionally: (time, kind, playbook, key, member, group, target, detail, status, reason,
        # loc, trigger); keywords cost a dataclass's `__init__` more, and this runs per action.
        action = Action(
            self.now,
            plain.kind,
            c.name,
            key,
            target_member.id if target_member else None,
            flow.group,
            "member",
            {},
            "done",
            None,
            plain.loc,
            flow.trigger,
        )
        # The common kinds first, by exact type, without the match's ABC instance checks.
        if plain.send is not None:
            self._send(action, plain.send, flow, member, group)
        elif plain.detail is not None:  # a kick's or a grant's, the same for every action of the step
            action.detail = dict(plain.detail)
        elif self._decide(action, step, c, instr, flow, member, group, key):
            return  # a draw: one record per winner, decided now, in place of this action
        self._policy(action, tz, flow)

    def _decide(
        self,
        action: Action,
        step: lang.Action | None,
        c: _Compiled,
        instr: Instr,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
        key: str,
    ) -> bool:
        """An action's target and detail, by the step's kind (exhaustive over `lang.Action`); True
        when the step wrote its own records in its place (a draw)."""
        match step:
            case lang.SendStep():
                self._send(action, plain_send(step, c.program), flow, member, group)
            case lang.KickStep():
                # `because`, as the playbook writes it: an action's `reason` says only why the
                # policy or the run did not do it as planned.
                action.detail = {"because": step.reason}
            case lang.GrantStep():
                coupon = c.program.coupons[step.coupon]
                action.detail = {"coupon": step.coupon, "worth": coupon.worth}
            case lang.InviteStep():
                action.detail = {"to_group": step.group}
            case lang.CallStep():
                try:
                    args = {k: self._value(v, flow, member, group) for k, v in step.args.items()}
                except (ArithmeticError, TypeError) as exc:
                    args = {k: v for k, v in step.args.items() if not isinstance(v, lang.Ref | lang.Calc)}
                    action.status, action.reason = "failed", f"{type(exc).__name__}: {exc}"
                action.kind = "call"
                action.detail = {
                    "action": step.action,
                    "args": {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in args.items()},
                }
                wrong = next((k for k, v in action.detail["args"].items() if not _plain(v)), None)
                if wrong is not None:
                    # A value a bot registered from Python (a set, an object) that no executor can be sent.
                    value = action.detail["args"][wrong]
                    action.detail["args"] = {
                        k: v if _plain(v) else repr(v) for k, v in action.detail["args"].items()
                    }
                    action.status = "failed"
                    action.reason = f"argument '{wrong}' is a {type(value).__name__}, which cannot be sent"
            case lang.DissolveStep():
                action.member = None
                action.target = "group"
            case lang.DrawStep():
                self._draw(flow, c, instr, step, group, key)
                return True
            case lang.TagStep() | lang.AddStep() | lang.SetStep() | None:
                # Tags, adds and sets are done above; an `act` always has its action.
                raise EngineError(f"{instr.loc}: an `act` instruction for {type(step).__name__}")
            case _:
                assert_never(step)
        return False

    def _send(
        self,
        action: Action,
        send: Send,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> None:
        """A send's target and detail: its template, channel, arm, text, attachments, mentions."""
        target = send.target
        action.target = target
        if target == "group":
            action.member = None
        detail: dict[str, Any] = {"template": send.template, "channel": send.channel}
        action.detail = detail
        if flow.arm is not None:
            detail["arm"] = flow.arm
        try:
            detail["text"] = self._render(send.source, send.parts, flow, member, group)
        except RenderError as exc:
            action.status, action.reason = "failed", str(exc)
        if send.attachments:
            detail["attachments"] = [a.detail() for a in send.attachments]
        if send.mentions and member is not None:
            # The checker allows a mention only in a group send with a member (SOP207).
            detail["mentions"] = [member.id]
        if target == "operator":
            detail["operator"] = group.operator if group else None

    def _value(
        self,
        value: lang.Ref | lang.Literal_ | lang.Calc | lang.CouponField,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> Any:
        """What a step reads: a literal as it is, a reference's value, the flow's coupon's field,
        or arithmetic worked out over the flow's member, group and event (errors raise, see
        `engine/calc.py`)."""
        if isinstance(value, lang.Ref):
            return self._ref_value(value, flow, member, group)
        if isinstance(value, lang.CouponField):
            return self._coupon_value(value, flow, group)
        if isinstance(value, lang.Calc):

            def reader(ref: lang.Ref) -> Getter:
                # Read as `set` reads a reference: the flow's event, a counter unset reads 0.
                return lambda m, g, e: self._ref_value(ref, flow, member, group)

            return compile_operand(value, reader)(member, group, flow.event)
        return value

    def _set(
        self,
        flow: Flow,
        c: _Compiled,
        instr: Instr,
        step: lang.SetStep,
        target: MemberState,
        member: MemberState | None,
        group: GroupState | None,
    ) -> None:
        """`set`: an attribute takes the value; a counter too (`set member.streak = 0` resets it),
        its thresholds firing as for `add`; a date attribute's triggers are armed for its new day.
        A value that cannot be worked out (division by zero, a coupon whose grant did not go out)
        leaves the field as it was, and the step is recorded as a failed `set`."""
        try:
            value = self._value(step.value, flow, member, group)
        except (ArithmeticError, TypeError, LookupError) as exc:
            self._emit(
                Action(
                    self.now,
                    "set",
                    c.playbook.name,
                    self._key_for(flow),
                    member=target.id,
                    group=flow.group,
                    target="member",
                    detail={"field": step.attribute},
                    status="failed",
                    reason=f"{type(exc).__name__}: {exc}",
                    loc=instr.loc,
                    trigger=flow.trigger,
                )
            )
            return
        if step.attribute in self._counter_names:
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._set_counter(flow, target, step.attribute, float(value))
            return  # an unset value leaves a counter as it is
        before = target.attributes.get(step.attribute)
        after = value.isoformat() if isinstance(value, dt.date) else value
        target.attributes[step.attribute] = after
        if after != before:
            self._rearm_dates(target, step.attribute)

    def _set_counter(self, flow: Flow, member: MemberState, counter: str, after: float) -> None:
        before = member.counters.get(counter, 0.0)
        member.counters[counter] = after
        # A playbook this sets off starts from this step, not from whatever came before.
        cause, self._cause = self._cause, f"a:{self._key_for(flow)}"
        try:
            self._threshold(member, counter, before, after)
        finally:
            self._cause = cause

    def _to_referrer(self, step: Any) -> bool:
        """Whether a step acts on the member's referrer (asked of pydantic once per step)."""
        found = self._referrer_steps.get(id(step))
        if found is None:
            # Sends and tags name their subject `target`; add and set name it `root`.
            found = getattr(step, "target", None) == "referrer" or getattr(step, "root", None) == "referrer"
            self._referrer_steps[id(step)] = found
        return found

    def _policy(self, action: Action, tz: ZoneInfo, flow: Flow) -> bool:
        """Apply the delivery policy to an action due now; True if it was deferred.

        A deferred action holds its flow: the next step runs once the action has gone out (or
        was dropped), so `send warning` then `wait 1 day for member posts` gives a full day
        after the warning is delivered, and nothing overtakes a message waiting for 08:00.
        """
        if action.status == "failed":
            self._emit(action)
            return False
        if action.kind not in self.delivery.ruled:
            # No rule of the policy can hold this kind back: it goes out as `decide` would say.
            if action.kind in _APPLIED:
                self._apply(action, flow)
            self._emit(action)
            return False
        tags = self.members[action.member].tags if action.member and action.member in self.members else None
        decision = self.delivery.decide(action, self.now, tz, tags)
        if decision.verdict == "go":
            self._apply(action, flow)
            self._emit(action)
        elif decision.verdict == "defer":
            assert decision.until is not None
            if action.planned is None:
                action.planned = action.time
            if action.reason is None or action.reason == decision.reason:
                action.reason = decision.reason
            else:  # moved twice (a cap's next day starts in quiet hours): both moves count
                action.reason = f"{action.reason}, then {decision.reason}"
            if self.holds:
                shown = Action(**action.fields())
                shown.time, shown.status = decision.until, "deferred"
                for hold in self.holds:
                    hold(shown)
            flow.token += 1
            flow.waiting = _HELD
            self._push(
                decision.until,
                flow.playbook,
                action.member or "",
                Deliver(action, flow.id, flow.token),
                action.group or "",
            )
            return True
        else:
            action.status = "dropped" if decision.verdict == "drop" else "blocked"
            action.reason = decision.reason
            self._emit(action)
        return False

    def _deliver(self, action: Action, hold: tuple[int, int]) -> None:
        action.time = self.now
        group = self.groups.get(action.group) if action.group else None
        flow = self.flows.get(hold[0])
        gone = action.kind == "kick" and (group is None or action.member not in group.members)
        if flow is None or flow.token != hold[1] or gone:
            # Its flow was ended while the action waited (the member left or was removed, the
            # group was dissolved, a new plan version ended it): its pending action is cancelled, visibly.
            action.status = "dropped"
            if group is not None and group.dissolved:
                action.reason = "the group was dissolved"
            elif gone or (
                action.member is not None
                and action.member not in (group.members if group is not None else self.contacts)
            ):
                action.reason = "the member left the group" if group is not None else "the member left"
            elif action.member is None:
                # A post to the group names no member: whose flow it was, and whether they left,
                # is not kept once the flow ends (no state beyond what a snapshot holds).
                action.reason = (
                    "its flow ended while it waited (its member left, or a new plan version ended it)"
                )
            else:
                action.reason = "its flow was ended by a new plan version"
            self._emit(action)
            if flow is not None and flow.token == hold[1]:
                flow.waiting = None
                flow.pc += 1
                self._run(flow)
            return
        if self._policy(action, group.zone if group else self.zone, flow):
            return  # deferred again
        if flow.id in self.flows:
            flow.waiting = None
            flow.pc += 1
            self._run(flow)

    def _apply(self, action: Action, flow: Flow) -> None:  # for the kinds of _APPLIED
        # The flow doing a kick or a dissolve carries on (say, to log it to the operator);
        # every other flow of that member in that group, or in that group, ends.
        if action.kind == "grant":
            # Templates see `coupon` only once it is really granted: a grant dropped for want of
            # stock makes a later send that mentions it fail visibly, never promise a coupon.
            coupon = self.compiled[flow.playbook].coupons[str(action.detail["coupon"])]
            group = self.groups.get(action.group) if action.group else None
            tz = group.zone if group is not None else self.zone
            expires = timeutil.add(self.now, coupon.valid, tz) if coupon.valid else None
            flow.coupon = {
                "name": coupon.name,
                "title": coupon.title,
                "worth": coupon.worth,
                # An instant until a template reads it (see _context): most grants are never quoted.
                "expires_at": expires if expires else "",
                "code": action.key[:10].upper(),
            }
        elif action.kind == "kick" and action.group and action.member:
            group = self.groups.get(action.group)
            member = self.members.get(action.member)
            if group is not None and member is not None:
                group.members.discard(member.id)
                member.groups = self.sets.share(member.groups - {group.id})
                self._end_flows(member.id, group.id, keep=flow.id)
        elif action.kind == "dissolve" and action.group:
            group = self.groups.get(action.group)
            if group is not None:
                group.dissolved = True
                for other in [f for f in self.flows.values() if f.group == group.id and f.id != flow.id]:
                    self._unwait(other)
                    self._drop(other)

    def _cascade(self, event: Event) -> None:
        if self._depth >= _MAX_CASCADE:
            return
        if (
            event.member not in self.waits
            and self._key(event) not in self._event_index
            and event.kind not in self.windows
        ):
            return  # a tag change nothing listens to: its state change is already made
        self._depth += 1
        cause = self._cause
        self._cause = f"c:{event.id}"
        try:
            self._event(event)
        finally:
            self._depth -= 1
            self._cause = cause

    def _emit(self, action: Action) -> None:
        if self.keep_log:
            self.log.append(action)
        for sink in self.sinks:
            sink(action)
