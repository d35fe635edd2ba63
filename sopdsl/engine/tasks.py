"""Staff tasks: an `assign` made into a task for the contact's owner or the group's operator,
with the message it asks staff to send, and its escalation to the chief owner at its deadline.

Input: a flow at an `assign` instruction. Output: a `task` action (and, when the deadline passes
with the task undone and the policy names a chief owner, an `escalate` action; a task that names
nobody, a member without an owner, is logged `unassigned` with why); the flow's wait is
the engine's (`WaitTask`, its timeout). Simulated staff finish tasks after `task_delay`, or after
their own delay in `staff_delays` (a fixture's `staff`).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.happenings import _Happenings
from sopdsl.engine.parts import _Compiled
from sopdsl.engine.plain import plain_parts
from sopdsl.engine.rendering import RenderError
from sopdsl.engine.state import Flow, GroupState, MemberState, WaitTask
from sopdsl.engine.timers import TaskDone
from sopdsl.plan import Instr, timeutil

# Why a task names nobody, by whom it is for: its action's `reason` (status "unassigned").
_NOBODY = {
    "owner": "the member has no owner (跟进人) to do it",
    "operator": "the group has no operator (运营) to do it",
}


class _Tasks(_Happenings):
    """Making staff tasks and escalating the undone."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _assign(
        self,
        flow: Flow,
        c: _Compiled,
        instr: Instr,
        member: MemberState | None,
        group: GroupState | None,
        tz: ZoneInfo,
    ) -> int:
        """Make the task of an `assign` and set the flow waiting on it; its deadline."""
        assert instr.duration is not None
        key = self._key_for(flow)
        due_by = timeutil.add(self.now, instr.duration, tz)
        detail = self._task_detail(flow, c, instr, member, group)
        detail["due"] = timeutil.aware(due_by, tz).isoformat()
        if instr.template is not None and flow.member is not None:
            over = self.delivery.count_task(flow.member, self.now, tz)
            if over is not None:
                detail["over_limit"] = over  # the platform will refuse it: staff should know
        self._emit_task("task", key, flow, c.playbook.name, instr.loc, detail)
        flow.waiting = WaitTask(key)
        assignee = detail["assignee"]
        if assignee is None:
            delay = None  # nobody is named to do it: no simulated staff member finishes it
        else:
            delay = self.staff_delays[assignee] if assignee in self.staff_delays else self.task_delay
        if delay is not None and self.now + delay < due_by:
            self._push(self.now + delay, flow.playbook, flow.member or "", TaskDone(key), flow.group or "")
        return due_by

    def _escalate(self, flow: Flow, task: WaitTask) -> None:
        """A task still undone at its deadline: an `escalate` action to the policy's chief owner."""
        c = self.compiled[flow.playbook]
        chief = c.program.policy.escalate_to
        if chief is None:
            return
        instr = c.code_of(flow.entry)[flow.pc]
        member = self.members.get(flow.member) if flow.member else None
        group = self.groups.get(flow.group) if flow.group else None
        detail = self._task_detail(flow, c, instr, member, group)
        tz = group.zone if group is not None else self.zone
        detail |= {"task": task.key, "assignee": chief, "undone_by": detail["assignee"]}
        detail["due"] = timeutil.aware(self.now, tz).isoformat()  # its deadline, which is now
        self._emit_task("escalate", f"{task.key}:escalate", flow, c.playbook.name, instr.loc, detail)

    def _platform_task(
        self, flow: Flow, c: _Compiled, instr: Instr, member: MemberState | None, group: GroupState | None
    ) -> None:
        """A step the platform cannot perform (`platform { cannot kick }`): a task for the group's
        operator to do it by hand; nothing changes until the platform reports it done (a `leave`)."""
        step = instr.action
        assert step is not None
        who = f"{member.name or member.id} ({member.id})" if member is not None else ""
        where = group.name or group.id if group is not None else ""
        what = {
            "kick": f"remove {who} from {where}",
            "dissolve": f"dissolve {where}",
            "invite": f"invite {who} to {getattr(step, 'group', '')}",
        }[step.kind]
        detail: dict[str, Any] = {
            "text": f"{what} by hand: the platform cannot",
            "to": "operator",
            "assignee": group.operator if group else None,
            "operator": group.operator if group else None,
            "instead_of": step.kind,
        }
        if isinstance(step, lang.KickStep):
            detail["because"] = step.reason
        self._emit_task("task", self._key_for(flow), flow, c.playbook.name, instr.loc, detail)

    def _emit_task(
        self, kind: str, key: str, flow: Flow, playbook: str, loc: str, detail: dict[str, Any]
    ) -> None:
        failed = detail.pop("text_error", None)
        status, reason = ("done", None) if failed is None else ("failed", failed)
        if failed is None and detail["assignee"] is None:
            # It still goes out (an executor may find the assignee itself: WeCom asks for the
            # contact's owner) and stays open to its deadline, but the log says nobody is named.
            status, reason = "unassigned", _NOBODY.get(detail["to"], "nobody is named to do it")
        self._emit(
            Action(
                self.now,
                kind,
                playbook,
                key,
                member=flow.member,
                group=flow.group,
                target=detail["to"],
                detail=detail,
                status=status,
                reason=reason,
                loc=loc,
                trigger=flow.trigger,
            )
        )

    def _task_detail(
        self, flow: Flow, c: _Compiled, instr: Instr, member: MemberState | None, group: GroupState | None
    ) -> dict[str, Any]:
        """What a task says: its text, whom it goes to, and the message staff are asked to send."""
        to = instr.to or "operator"
        text, failed = self._render_text(instr.text or "", instr.parts, flow, member, group)
        detail: dict[str, Any] = {
            "text": text,
            "to": to,
            "assignee": (member.owner if member else None)
            if to == "owner"
            else (group.operator if group else None),
            "operator": group.operator if group else None,
        }
        if failed is not None:
            detail["text_error"] = failed  # the task fails, as a send whose template fails does
        if instr.template is not None:
            template = c.program.templates[instr.template]
            detail["template"] = instr.template
            try:
                detail["message"] = self._render(
                    template.source, plain_parts(template.parts), flow, member, group
                )
            except RenderError as exc:
                # The task still goes to staff, who can write the message themselves.
                detail["message"], detail["message_error"] = None, str(exc)
            if template.attachments:
                detail["attachments"] = [a.detail() for a in template.attachments]
        return detail
