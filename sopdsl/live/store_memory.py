"""The memory store: the store interface over Python dicts, for simulation, tests and throwaway bots.

Input and output as `sopdsl.live.store.Store`. Nothing survives the process; one process only.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sopdsl.live import store_figures
from sopdsl.live.store import (
    DONE,
    DRY_RUN,
    FAILED,
    PARKED,
    PENDING,
    SKIPPED,
    Batch,
    Entry,
    OutboxRow,
    Roster,
    ShardInfo,
    Step,
    SyncsEachCommit,
    left_for,
)
from sopdsl.live.store_contacts import MemoryContacts
from sopdsl.live.store_tasks import STAFF_KINDS, TaskMark, escalation_key


class MemoryStore(MemoryContacts, SyncsEachCommit):
    """A store in this process's memory."""

    multi_worker = False

    def __init__(self, url: str = "memory://") -> None:
        super().__init__()
        self.url = url
        self._lock = threading.RLock()
        self._shards: dict[str, ShardInfo] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._journal: dict[str, list[Entry]] = {}
        self._event_ids: dict[str, set[str]] = {}
        self._plans: dict[str, str] = {}
        self._rows: list[OutboxRow] = []
        self._keys: set[tuple[str, str]] = set()
        self._row_leases: dict[int, tuple[str, float]] = {}
        self._purged_out = 0
        self._purged_failures = 0
        self._snapshots: dict[str, tuple[int, bytes]] = {}
        self._sums: dict[tuple[str, str, int, str], float] = defaultdict(float)  # shard, group, slot, figure
        self._seen: set[tuple[str, str, int, str, str]] = set()  # ... and member
        self._playbooks: dict[str, store_figures.PlaybookFacts] = defaultdict(store_figures.PlaybookFacts)
        self._tasks: dict[tuple[str, str], TaskMark] = {}
        self._staff: dict[str, list[int]] = defaultdict(list)  # shard -> ids of its task, escalate rows
        self._alive: dict[str, float] = {}  # worker -> until when it said it is alive

    def ensure_shard(self, shard: str, *, start: int, seed: int, plan_hash: str) -> ShardInfo:
        """The shard's record, created with these values if it does not exist yet."""
        with self._lock:
            info = self._shards.setdefault(shard, ShardInfo(shard, start, seed, plan_hash))
            self._journal.setdefault(shard, [])
            self._event_ids.setdefault(shard, set())
            return copy.copy(info)

    def save_plan(self, plan_hash: str, body: str) -> None:
        """Keep a plan's JSON by its hash."""
        with self._lock:
            self._plans.setdefault(plan_hash, body)

    def load_plan(self, plan_hash: str) -> str | None:
        """A plan's JSON by its hash, or None."""
        return self._plans.get(plan_hash)

    def load_snapshot(self, shard: str) -> tuple[int, bytes] | None:
        """The shard's latest engine snapshot and the journal entry it was taken after, or None."""
        return self._snapshots.get(shard)

    def save_snapshot(self, shard: str, seq: int, body: bytes) -> None:
        """Keep an engine snapshot taken after entry `seq`, unless the shard has a later one."""
        with self._lock:
            kept = self._snapshots.get(shard)
            if kept is None or kept[0] < seq:
                self._snapshots[shard] = (seq, body)

    def journal(self, shard: str, after: int = 0) -> list[Entry]:
        """The shard's journal entries after sequence number `after`."""
        with self._lock:
            return [
                Entry(e.seq, copy.deepcopy(e.body)) for e in self._journal.get(shard, ()) if e.seq > after
            ]

    def append(self, shard: str, new: Sequence[dict[str, Any]]) -> int:
        """Append entries for whichever worker applies the shard; how many were taken."""
        with self._lock:
            accepted = self._accept(shard, new)
            self._append(self._shards[shard], accepted)
            return len(accepted)

    def _accept(self, shard: str, new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = self._event_ids[shard]
        accepted: list[dict[str, Any]] = []
        for body in new:
            event_id = body.get("id")
            if event_id is not None and (event_id in ids or any(b.get("id") == event_id for b in accepted)):
                continue
            accepted.append(copy.deepcopy(body))
        return accepted

    def apply(
        self,
        shard: str,
        new: Sequence[dict[str, Any]],
        step: Step,
        *,
        since: int,
        worker: str,
        wall: float,
        lease: float,
        appended: Callable[[list[dict[str, Any]]], None] | None = None,
        defer_to: str | None = None,
    ) -> Batch | None:
        """Append `new`, run `step` and insert its rows, all or nothing."""
        with self._lock:
            info = self._shards[shard]
            ids = self._event_ids[shard]
            accepted: list[dict[str, Any]] = []
            for body in new:
                event_id = body.get("id")
                if event_id is not None and (
                    event_id in ids or any(b.get("id") == event_id for b in accepted)
                ):
                    continue
                accepted.append(copy.deepcopy(body))
            owner = self._holder(shard, wall)
            if left_for(owner, worker, defer_to):
                self._append(info, accepted)
                if appended is not None:
                    appended(accepted)
                return None
            existing = [Entry(e.seq, copy.deepcopy(e.body)) for e in self._journal[shard] if e.seq > since]
            batch = step(copy.copy(info), existing, accepted)
            self._append(info, batch.entries)
            for row in batch.rows:
                if (row.shard, row.key) in self._keys:
                    continue  # the outbox suppresses a second action with the same key
                self._keys.add((row.shard, row.key))
                row.id = len(self._rows) + 1
                self._rows.append(copy.copy(row))
                if row.kind in STAFF_KINDS:
                    self._staff[row.shard].append(row.id)
            self._count_playbooks(shard, batch.figures)
            info.applied = info.head
            info.next_due = batch.next_due
            if batch.plan_now:
                info.plan_now = batch.plan_now
            if batch.snapshot:
                self._snapshots[shard] = batch.snapshot
            self._leases[shard] = (worker, wall + lease)
            return batch

    def _append(self, info: ShardInfo, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            info.head += 1
            self._journal[info.shard].append(Entry(info.head, copy.deepcopy(body)))
            if body.get("id") is not None:
                self._event_ids[info.shard].add(body["id"])
            if body.get("op") == "event":
                info.events += 1
        self._count(info.shard, store_figures.Tally().events(bodies))

    def _count(self, shard: str, tally: store_figures.Tally) -> None:
        for (group, slot, figure), value in tally.sums.items():
            self._sums[(shard, group, slot, figure)] += value
        self._seen.update((shard, *seen) for seen in tally.seen)

    def _count_playbooks(self, shard: str, tally: store_figures.PlaybookTally | None) -> None:
        if tally:
            self._playbooks[shard].add(tally)

    def figures(self, shard: str, lo: int, hi: int) -> store_figures.Found:
        """The live figures of engine times [lo, hi) (see `Store.figures`)."""
        first, last = store_figures.slots(lo, hi)
        with self._lock:
            sums = [
                (g, s, f, v) for (sh, g, s, f), v in self._sums.items() if sh == shard and first <= s < last
            ]
            seen = [(g, s, f, m) for (sh, g, s, f, m) in self._seen if sh == shard and first <= s < last]
            playbooks = self._playbooks[shard].found(lo, hi)
        return playbooks._replace(sums=sorted(sums), seen=sorted(seen))

    def figures_span(self, shard: str) -> tuple[int, int] | None:
        """The engine times its figures span (see `Store.figures_span`)."""
        with self._lock:
            kept = [s for (sh, _, s, _) in self._sums if sh == shard]
            kept += [s for (_, s, _) in self._playbooks[shard].sums] if shard in self._playbooks else []
        return store_figures.span_of(kept)

    def work(self, worker: str, wall: float, now: int, limit: int, skip: Collection[str] = ()) -> list[str]:
        """Shards with unapplied entries or due timers that this worker may take."""
        with self._lock:
            found = []
            for name in sorted(self._shards):
                info = self._shards[name]
                owner = self._holder(name, wall)
                if owner != worker and (owner is not None or name in skip):
                    continue
                if info.head > info.applied or (info.next_due is not None and info.next_due <= now):
                    found.append(name)
            return found[:limit]

    def release(self, shard: str, worker: str) -> None:
        """Give up this worker's lease on a shard."""
        with self._lock:
            if self._leases.get(shard, ("", 0.0))[0] == worker:
                del self._leases[shard]

    def announce(self, worker: str) -> None:
        """One process holds a memory store: no other dispatcher to tell."""

    def hand_over(self, shard: str, worker: str, to: str, until: float) -> bool:
        """Pass this worker's lease on a shard to `to` (one process: nobody to tell)."""
        with self._lock:
            if self._leases.get(shard, ("", 0.0))[0] != worker:
                return False
            self._leases[shard] = (to, until)
            return True

    def roster(self, worker: str, wall: float, until: float) -> Roster:
        """Record `worker` alive until `until`; the live workers and each shard's live lease holder."""
        with self._lock:
            self._alive[worker] = until
            workers = tuple(sorted(w for w, alive in self._alive.items() if alive > wall))
            return Roster(workers, {name: self._leases.get(name, (None, 0.0))[0] for name in self._shards})

    def _holder(self, shard: str, wall: float) -> str | None:
        """The worker holding a live lease on the shard at `wall`, or None."""
        holder = self._leases.get(shard)
        return holder[0] if holder is not None and holder[1] > wall else None

    def claim(
        self,
        worker: str,
        wall: float,
        now: int,
        lease: float,
        limit: int,
        skip: Collection[int] = (),
        finished: Sequence[OutboxRow] = (),
    ) -> list[OutboxRow]:
        """Lease due pending rows, oldest first, one per order key, none behind a pending one."""
        with self._lock:
            self.finish(finished, worker)
            blocked: set[tuple[str, str]] = set()
            claimed: list[OutboxRow] = []
            for row in self._rows:
                if row.status != PENDING:
                    continue
                order = (row.shard, row.order_key)
                if order in blocked:
                    continue
                blocked.add(order)
                holder = self._row_leases.get(row.id)
                leased = holder is not None and holder[0] != worker and holder[1] > wall
                if row.next_at <= now and not leased and row.id not in skip:
                    self._row_leases[row.id] = (worker, wall + lease)
                    claimed.append(copy.copy(row))
                    if len(claimed) >= limit:
                        break
            return claimed

    def finish(self, rows: Sequence[OutboxRow], worker: str) -> None:
        """Record dispatches' outcomes and end their leases."""
        with self._lock:
            for row in rows:
                stored = self._rows[row.id - 1]
                if stored.status != PENDING:
                    continue
                stored.status, stored.attempts, stored.failures = row.status, row.attempts, row.failures
                stored.next_at, stored.error = row.next_at, row.error
                self._row_leases.pop(row.id, None)
                if row.status == DONE:
                    self._count(row.shard, store_figures.Tally().done(row.action))

    def requeue(self, shard: str, key: str, now: int) -> bool:
        """Put a parked row back to pending."""
        with self._lock:
            for row in self._rows:
                if row.shard == shard and row.key == key and row.status == PARKED:
                    row.status, row.attempts, row.next_at = PENDING, 0, now
                    return True
            return False

    def purge(self, before: int, touches_before: int | None = None) -> int:
        """Delete finished rows due before `before`, and the figures' member rows no report from
        `before` on reads (as `store_figures.prunes`); the totals in `stats` keep counting the rows."""
        with self._lock:
            first = before // store_figures.SLOT
            self._seen = {seen for seen in self._seen if seen[2] >= first}
            for facts in self._playbooks.values():
                facts.prune(before, touches_before)
            gone = 0
            for index, row in enumerate(self._rows):
                if row.status in (DONE, DRY_RUN, SKIPPED) and row.next_at < before:
                    self._purged_out += row.status != SKIPPED
                    self._purged_failures += row.failures
                    # A tombstone keeps ids as list positions.
                    self._rows[index] = OutboxRow(row.shard, row.key, "", "", {}, status="purged", id=row.id)
                    gone += 1
            return gone

    def outbox(self, shard: str | None = None, status: str | None = None) -> list[OutboxRow]:
        """Every outbox row (of one shard, or all; with one status, or any), in id order."""
        with self._lock:
            return [
                copy.copy(r)
                for r in self._rows
                if r.status != "purged"
                and (shard is None or r.shard == shard)
                and (status is None or r.status == status)
            ]

    def staff_actions(self, shard: str, key: str | None = None) -> list[OutboxRow]:
        """The shard's `task` and `escalate` outbox rows in id order (only a task's own and its
        escalation's, with `key`)."""
        keys = None if key is None else (key, escalation_key(key))
        with self._lock:
            rows = (self._rows[i - 1] for i in self._staff.get(shard, ()))
            return [copy.copy(r) for r in rows if r.status != "purged" and (keys is None or r.key in keys)]

    def next_wakeup(self) -> int | None:
        """The earliest due timer or pending row over all shards, or None."""
        with self._lock:
            times = [i.next_due for i in self._shards.values() if i.next_due is not None]
            times.extend(r.next_at for r in self._rows if r.status == PENDING)
            return min(times, default=None)

    def stats(self) -> dict[str, int]:
        """Totals over all shards."""
        with self._lock:
            statuses = [r.status for r in self._rows]
            return {
                "events_in": sum(i.events for i in self._shards.values()),
                "actions_out": sum(s in (DONE, DRY_RUN) for s in statuses) + self._purged_out,
                "pending": statuses.count(PENDING),
                "failures": sum(r.failures for r in self._rows) + self._purged_failures,
                "parked": statuses.count(PARKED),
                "failed": statuses.count(FAILED),
            }

    def claim_task(self, shard: str, key: str, who: str) -> str:
        """Claim a staff task for `who` unless someone holds it; who holds it now."""
        with self._lock:
            mark = self._tasks.get((shard, key), TaskMark(key))
            if mark.claimed_by is None:
                mark = self._tasks[shard, key] = dataclasses.replace(mark, claimed_by=who)
            return str(mark.claimed_by)

    def finish_task(self, shard: str, key: str) -> None:
        """Mark a staff task done."""
        with self._lock:
            self._tasks[shard, key] = dataclasses.replace(
                self._tasks.get((shard, key), TaskMark(key)), done=True
            )

    def task_marks(self, shard: str, key: str | None = None) -> dict[str, TaskMark]:
        """Every task of the shard that staff claimed or finished (or only the one keyed `key`), by key."""
        with self._lock:
            if key is not None:
                mark = self._tasks.get((shard, key))
                return {} if mark is None else {key: mark}
            return {k: mark for (s, k), mark in self._tasks.items() if s == shard}

    def watch(self, worker: str, wake: Callable[[], None], rows: Callable[[], None] | None = None) -> bool:
        """One process holds a memory store: nobody else journals for it."""
        return False

    def close(self) -> None:
        """Nothing to release."""
