"""Registering groups and members with a live runtime (journaled, so they survive restarts).

`Runtime` takes these methods from `Registering`: each journals `group` and `member` entries
through the runtime's own submission and application, as the admin API and bots call them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from sopdsl.engine.actions import Action
from sopdsl.engine.records import GroupRecord, MemberRecord, group_record, member_record
from sopdsl.live.clock import Clock
from sopdsl.live.closing import refuse_if_closed
from sopdsl.live.record_limits import check, ident
from sopdsl.live.shards import Check, plain
from sopdsl.live.store import Store


class Registering(ABC):
    """`add_group`, `add_member` and `register` of `sopdsl.live.runtime.Runtime`."""

    clock: Clock
    shard: str
    store: Store
    closed: bool
    _lock: threading.RLock

    @abstractmethod
    def _submit(self, body: dict[str, Any], check: Check | None = None) -> list[Action]: ...

    @abstractmethod
    def _apply(self, name: str, new: list[dict[str, Any]], *, until: int | None) -> list[Action]: ...

    def add_group(
        self,
        group: str | GroupRecord,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        timezone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Register a group (journaled: it survives restarts): a `GroupRecord`, or an id and the
        record's fields as keywords. Adding one again is ignored."""
        given: object = group  # a caller without type checks may pass anything
        if not isinstance(given, GroupRecord | str):
            ident(given)  # raises: the compiled record would take only text as its id
        record = group_record(group, locals())
        check(record)  # as the admin API does: `RecordError` naming the field
        body = {"op": "group", "id": f"group:{record.id}", "time": self.clock.now(), **record.journal_body()}
        self._submit(plain(body, f"group '{record.id}'"))

    def add_member(
        self,
        member: str | MemberRecord,
        *,
        name: str = "",
        nickname: str = "",
        tags: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        counters: Mapping[str, float] | None = None,
        groups: Iterable[str] = (),
        joined_at: int | None = None,
        referrer: str | None = None,
        channel: str | None = None,
        contact: bool = False,
        owner: str | None = None,
        group_joined_at: Mapping[str, int] | None = None,
        group_last_message_at: Mapping[str, int] | None = None,
        last_order_at: int | None = None,
    ) -> None:
        """Register a member already present (journaled); one registered after the start counts as silent from then.

        Takes a `MemberRecord`, or an id and the record's fields as keywords (as `Engine.add_member`).
        New arrivals come as `join` events, which also start the playbooks that greet them.
        """
        given: object = member  # as in `add_group`
        if not isinstance(given, MemberRecord | str):
            ident(given)  # raises
        record = member_record(member, locals())
        check(record)  # as the admin API does: `RecordError` naming the field
        member_id = record.id
        body = {
            "op": "member",
            "id": f"member:{member_id}",
            "time": self.clock.now(),
            **record.journal_body(),
        }
        self._submit(plain(body, f"member '{member_id}'"))

    def register(self, records: Iterable[GroupRecord | MemberRecord]) -> None:
        """Register or update groups and members in one transaction (journaled; all or none).

        Unlike `add_group` and `add_member`, registering one again is not ignored: a group takes
        the new record (keeping its members), a member gains what the record gives (tags,
        attributes, counters, groups, non-empty fields) and keeps the rest. A record the admin
        API would refuse raises `RecordError` whose `index` is its place; nothing is stored then.
        """
        now = self.clock.now()
        bodies = []
        for index, record in enumerate(records):
            check(record, index)  # before anything is stored: all or none
            op = "group" if isinstance(record, GroupRecord) else "member"
            bodies.append(plain({"op": op, "time": now, **record.journal_body()}, f"{op} '{record.id}'"))
        refuse_if_closed(self.closed, self.store.url)
        if bodies:
            with self._lock:
                self._apply(self.shard, bodies, until=None)
