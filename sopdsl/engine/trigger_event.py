"""`on member joins`, `on member tagged "x"`, `on share_photo`: an event of a kind starts the
playbooks that listen to its key (the plan's event index); nothing to arm."""

from __future__ import annotations

from typing import Final

from sopdsl import lang
from sopdsl.engine.events import Event
from sopdsl.engine.parts import _Parts
from sopdsl.engine.state import MemberState
from sopdsl.engine.trigger_base import TriggerHandler


class EventHandler(TriggerHandler[lang.OnEvent]):
    """An event trigger: started by the event's key, never armed."""

    def started_by(
        self,
        e: _Parts,
        starts: tuple[tuple[int, int], ...],
        event: Event,
        member: MemberState,
        group_id: str | None,
        now: int,
    ) -> None:
        """Start the playbooks an event's key starts (playbook and trigger index each)."""
        kind = event.kind
        for pb_index, t_index in starts:
            c = e.compiled[pb_index]
            scope = c.scope_kind
            where = group_id
            if where is None:
                if kind in ("join", "leave") and scope != "private":
                    continue  # a contact added or removed in private chats is no group's business
                if scope in ("tagged", "named"):
                    # A member-level event (a tag set in the CRM) counts in the member's groups in scope.
                    where = e._member_group(c, member)
            e._start_flow(c, member, where, c.trigger_locs[t_index], dict(event.data), now)


EVENT: Final = EventHandler()
