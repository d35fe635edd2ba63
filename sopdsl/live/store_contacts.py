"""What a platform's callbacks say about contacts, kept in the store so that every worker, and
the process after a restart, finds it: the WeCom adapter's memory (`live/wecom/contacts.py`).

Input: the customers a staff member added (whether fully, or half: 免验证, not yet confirmed),
the one-time welcome codes of those callbacks, the owners asked of WeCom, customer groups'
owners, and the userids WeCom called staff. Output: a customer's owner, a customer group's
owner, a welcome code given out once and only while young enough, which userids are staff, and
whether an added contact is the confirmation of a half-added one (greeted already).

Kept in four tables made when missing, at any schema version (as the task inbox's are), so a
store of an earlier sopdsl opens without a migration and nothing earlier reads them. The memory
store keeps the same in dicts (`MemoryContacts`), which is also what a `Contacts` without a
store uses.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

HALF, ADDED, ASKED = "half", "added", "asked"  # how an owner became known: a callback, or WeCom's answer
_IDS_PER_QUERY = 500
CODE_KEPT = 86_400.0  # seconds a welcome code is remembered, so a callback sent again cannot re-arm it

CONTACTS_TABLES = (
    """CREATE TABLE IF NOT EXISTS sopdsl_contact_owners (
        customer TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL, PRIMARY KEY (customer, owner))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_welcome_codes (
        code TEXT PRIMARY KEY, customer TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        spent INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS sopdsl_welcome_codes_customer ON sopdsl_welcome_codes (customer, at)",
    "CREATE TABLE IF NOT EXISTS sopdsl_group_owners (chat TEXT PRIMARY KEY, owner TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sopdsl_staff (userid TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL)",
)


@runtime_checkable
class ContactStore(Protocol):
    """The contacts' part of the store interface (every store has it; so does `MemoryContacts`).
    Times are wall-clock epoch seconds, which every worker shares."""

    def contact_added(self, customer: str, owner: str, *, half: bool, code: str | None, wall: float) -> bool:
        """Remember that `owner` added `customer` (half: before confirming) with the callback's
        welcome code; False when this confirms a half-added contact, who was greeted then."""
        ...

    def remember_owner(self, customer: str, owner: str, wall: float) -> None:
        """Remember an owner found otherwise (asked of WeCom)."""
        ...

    def forget_owner(self, customer: str, owner: str) -> None:
        """Forget that `owner` and the customer are each other's contacts."""
        ...

    def contact_owner(self, customer: str) -> str | None:
        """The staff member who added the customer last, if known."""
        ...

    def take_welcome_code(self, customer: str, wall: float, window: float) -> str | None:
        """The customer's newest welcome code younger than `window` seconds, given out once."""
        ...

    def group_owner(self, chat: str) -> str | None:
        """A customer group's owner, if known."""
        ...

    def remember_group_owner(self, chat: str, owner: str) -> None:
        """Remember a customer group's owner."""
        ...

    def forget_group(self, chat: str) -> None:
        """Forget a customer group's owner (it changed hands, or the group was dismissed)."""
        ...

    def remember_staff(self, userids: Collection[str], wall: float) -> None:
        """Remember that these userids are staff members (企业成员)."""
        ...

    def staff_among(self, userids: Collection[str]) -> set[str]:
        """Which of these userids are known staff members."""
        ...


@runtime_checkable
class KeepsState(Protocol):
    """An executor with memory its workers must share (the WeCom one's owners and welcome codes):
    the runtime hands it its store."""

    def keep_in(self, store: ContactStore) -> None:
        """Keep that memory in `store` from now on."""
        ...


def share_store(executors: Iterable[object], store: ContactStore) -> None:
    """Hand `store` to each executor that keeps state (`KeepsState`)."""
    for executor in executors:
        if isinstance(executor, KeepsState):
            executor.keep_in(store)


class MemoryContacts:
    """`ContactStore` in this process's memory: the memory store's, and a `Contacts` without a store."""

    def __init__(self) -> None:
        self._contacts_lock = threading.Lock()
        # customer -> owner -> (state, at): a send looks up its customer's owners, not everyone's.
        self._owners: dict[str, dict[str, tuple[str, float]]] = {}
        # code -> customer, at, spent, in the order the callbacks came (so the oldest go first),
        # and each customer's codes, so that neither a callback nor a send reads every code kept.
        self._codes: dict[str, tuple[str, float, bool]] = {}
        self._codes_of: dict[str, list[str]] = {}
        self._group_owners: dict[str, str] = {}
        self._staff_ids: set[str] = set()

    def contact_added(self, customer: str, owner: str, *, half: bool, code: str | None, wall: float) -> bool:
        """See `ContactStore.contact_added`."""
        with self._contacts_lock:
            owners = self._owners.setdefault(customer, {})
            before = owners.get(owner)
            owners[owner] = (HALF if half else ADDED, wall)
            self._expire(wall - CODE_KEPT)
            if code and code not in self._codes:
                self._codes[code] = (customer, wall, False)
                self._codes_of.setdefault(customer, []).append(code)
            return half or before is None or before[0] != HALF

    def remember_owner(self, customer: str, owner: str, wall: float) -> None:
        """See `ContactStore.remember_owner`."""
        with self._contacts_lock:
            self._owners.setdefault(customer, {}).setdefault(owner, (ASKED, wall))

    def forget_owner(self, customer: str, owner: str) -> None:
        """See `ContactStore.forget_owner`."""
        with self._contacts_lock:
            owners = self._owners.get(customer)
            if owners is not None:
                owners.pop(owner, None)
                if not owners:
                    del self._owners[customer]

    def contact_owner(self, customer: str) -> str | None:
        """See `ContactStore.contact_owner`."""
        with self._contacts_lock:
            known = [(at, owner) for owner, (_, at) in self._owners.get(customer, {}).items()]
        return max(known)[1] if known else None

    def take_welcome_code(self, customer: str, wall: float, window: float) -> str | None:
        """See `ContactStore.take_welcome_code`."""
        with self._contacts_lock:
            young = [
                (at, code)
                for code in self._codes_of.get(customer, ())
                for _, at, spent in (self._codes[code],)
                if not spent and at >= wall - window
            ]
            if not young:
                return None
            code = max(young)[1]
            self._codes[code] = (customer, self._codes[code][1], True)
            return code

    def _expire(self, before: float) -> None:
        """Forget the codes that came before `before` (the oldest first, as they came)."""
        while self._codes:
            code, (customer, at, _) = next(iter(self._codes.items()))
            if at >= before:
                return
            del self._codes[code]
            kept = self._codes_of[customer]
            kept.remove(code)
            if not kept:
                del self._codes_of[customer]

    def group_owner(self, chat: str) -> str | None:
        """See `ContactStore.group_owner`."""
        with self._contacts_lock:
            return self._group_owners.get(chat)

    def remember_group_owner(self, chat: str, owner: str) -> None:
        """See `ContactStore.remember_group_owner`."""
        with self._contacts_lock:
            self._group_owners[chat] = owner

    def forget_group(self, chat: str) -> None:
        """See `ContactStore.forget_group`."""
        with self._contacts_lock:
            self._group_owners.pop(chat, None)

    def remember_staff(self, userids: Collection[str], wall: float) -> None:
        """See `ContactStore.remember_staff`."""
        with self._contacts_lock:
            self._staff_ids.update(userids)

    def staff_among(self, userids: Collection[str]) -> set[str]:
        """See `ContactStore.staff_among`."""
        with self._contacts_lock:
            return self._staff_ids.intersection(userids)


class _Sql(Protocol):
    lock_row: str

    def _txn(self, *, flush: bool = True) -> AbstractContextManager[Any]: ...

    def _sql(self, sql: str) -> str: ...


class SqlContacts:
    """`ContactStore` over a SQL store's connection (mixed into `SqlStore`).

    Committed without waiting for a sync (`flush=False`: on PostgreSQL, the outbox's connection,
    so a feed's transaction does not hold a callback up): a power loss may forget a welcome code
    or an owner, which costs a mass send instead of a welcome, or a question to WeCom."""

    def contact_added(
        self: _Sql, customer: str, owner: str, *, half: bool, code: str | None, wall: float
    ) -> bool:
        """See `ContactStore.contact_added`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    f"SELECT state FROM sopdsl_contact_owners WHERE customer = ? AND owner = ?{self.lock_row}"
                ),
                (customer, owner),
            )
            before = cur.fetchone()
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_contact_owners (customer, owner, state, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (customer, owner) DO UPDATE SET state = excluded.state, at = excluded.at"
                ),
                (customer, owner, HALF if half else ADDED, wall),
            )
            cur.execute(self._sql("DELETE FROM sopdsl_welcome_codes WHERE at < ?"), (wall - CODE_KEPT,))
            if code:
                cur.execute(
                    self._sql(
                        "INSERT INTO sopdsl_welcome_codes (code, customer, at) VALUES (?, ?, ?) "
                        "ON CONFLICT (code) DO NOTHING"
                    ),
                    (code, customer, wall),
                )
            return half or before is None or str(before[0]) != HALF

    def remember_owner(self: _Sql, customer: str, owner: str, wall: float) -> None:
        """See `ContactStore.remember_owner`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_contact_owners (customer, owner, state, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (customer, owner) DO NOTHING"
                ),
                (customer, owner, ASKED, wall),
            )

    def forget_owner(self: _Sql, customer: str, owner: str) -> None:
        """See `ContactStore.forget_owner`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql("DELETE FROM sopdsl_contact_owners WHERE customer = ? AND owner = ?"),
                (customer, owner),
            )

    def contact_owner(self: _Sql, customer: str) -> str | None:
        """See `ContactStore.contact_owner`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT owner FROM sopdsl_contact_owners WHERE customer = ? "
                    "ORDER BY at DESC, owner DESC LIMIT 1"
                ),
                (customer,),
            )
            row = cur.fetchone()
            return None if row is None else str(row[0])

    def take_welcome_code(self: _Sql, customer: str, wall: float, window: float) -> str | None:
        """See `ContactStore.take_welcome_code`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT code FROM sopdsl_welcome_codes WHERE customer = ? AND spent = 0 AND at >= ? "
                    "ORDER BY at DESC, code DESC LIMIT 1"
                ),
                (customer, wall - window),
            )
            row = cur.fetchone()
            if row is None:
                return None
            # Two workers may read the same code: the one whose update finds it unspent has it.
            cur.execute(
                self._sql("UPDATE sopdsl_welcome_codes SET spent = 1 WHERE code = ? AND spent = 0"),
                (row[0],),
            )
            return str(row[0]) if cur.rowcount == 1 else None

    def group_owner(self: _Sql, chat: str) -> str | None:
        """See `ContactStore.group_owner`."""
        with self._txn(flush=False) as cur:
            cur.execute(self._sql("SELECT owner FROM sopdsl_group_owners WHERE chat = ?"), (chat,))
            row = cur.fetchone()
            return None if row is None else str(row[0])

    def remember_group_owner(self: _Sql, chat: str, owner: str) -> None:
        """See `ContactStore.remember_group_owner`."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_group_owners (chat, owner) VALUES (?, ?) "
                    "ON CONFLICT (chat) DO UPDATE SET owner = excluded.owner"
                ),
                (chat, owner),
            )

    def forget_group(self: _Sql, chat: str) -> None:
        """See `ContactStore.forget_group`."""
        with self._txn(flush=False) as cur:
            cur.execute(self._sql("DELETE FROM sopdsl_group_owners WHERE chat = ?"), (chat,))

    def remember_staff(self: _Sql, userids: Collection[str], wall: float) -> None:
        """See `ContactStore.remember_staff`."""
        if not userids:
            return
        with self._txn(flush=False) as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO sopdsl_staff (userid, at) VALUES (?, ?) "
                    "ON CONFLICT (userid) DO UPDATE SET at = excluded.at"
                ),
                [(userid, wall) for userid in sorted(set(userids))],
            )

    def staff_among(self: _Sql, userids: Collection[str]) -> set[str]:
        """See `ContactStore.staff_among`."""
        wanted = sorted(set(userids))
        found: set[str] = set()
        if not wanted:
            return found
        with self._txn(flush=False) as cur:
            # A customer group holds up to 500 members; SQLite took 999 parameters before 3.32.
            for first in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[first : first + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                cur.execute(self._sql(f"SELECT userid FROM sopdsl_staff WHERE userid IN ({marks})"), chunk)
                found.update(str(row[0]) for row in cur.fetchall())
        return found
