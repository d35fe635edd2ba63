"""What the callbacks taught about customers and groups, for the executor: owners and welcome codes.

Input: `Contact`s from `add_external_contact` callbacks, the owners the executor asked of WeCom,
and the callbacks that make an owner stale (a customer who deleted their owner, a group handed to
another owner). Output: a customer's owner (跟进人, the staff member who added them: the sender
of their messages and the `userid` of `mark_tag`), a customer group's owner (the sender of its
mass sends) and, once and only within `WELCOME_WINDOW` seconds, the welcome code that lets the
welcome go out through `send_welcome_msg`; which userids are staff, so that their joining and
leaving a customer group is not fed; and whether an added contact only confirms a half-added one.

Kept in the runtime's store (`keep_in`, which the runtime calls: `store_contacts.py`), so that
with `sopdsl run --workers N` the worker that executes a welcome finds the code another worker's
callback received, and a restart forgets no owner and no staff member. Until then, and without a
store (a Temporal front), in this process's memory. An owner not known is asked of WeCom.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from sopdsl.live.store_contacts import ContactStore, MemoryContacts
from sopdsl.live.wecom.events import Contact

WELCOME_WINDOW = 20.0  # seconds: WeCom takes a welcome code only this long after its callback


class Contacts:
    """Owners, welcome codes and staff by WeCom id, safe to share between threads.

    `clock` is the wall clock (epoch seconds): a code stored by one worker is timed by another."""

    def __init__(self, clock: Callable[[], float] = time.time, store: ContactStore | None = None) -> None:
        self.clock = clock
        self.store: ContactStore = store if store is not None else MemoryContacts()

    def keep_in(self, store: ContactStore) -> None:
        """Keep what the callbacks say in `store` from now on (the runtime's, shared by its workers)."""
        self.store = store

    def learn(self, contact: Contact) -> bool:
        """Remember a customer's owner, their welcome code if the callback had one, and that the
        owner is staff; False when the callback only confirms a half-added contact (greeted then)."""
        now = self.clock()
        self.store.remember_staff([contact.owner], now)  # only staff add customers
        return self.store.contact_added(
            contact.external_userid, contact.owner, half=contact.half, code=contact.welcome_code, wall=now
        )

    def remember_owner(self, customer: str, owner: str) -> None:
        """Remember an owner found otherwise (asked of WeCom)."""
        self.store.remember_owner(customer, owner, self.clock())

    def forget_owner(self, customer: str, owner: str) -> None:
        """Forget that `owner` is the customer's owner (the customer deleted them, or they the customer)."""
        self.store.forget_owner(customer, owner)

    def group_owner(self, chat: str) -> str | None:
        """The owner of a customer group, if known."""
        return self.store.group_owner(chat)

    def remember_group_owner(self, chat: str, owner: str) -> None:
        """Remember a customer group's owner (asked of WeCom); a group's owner is staff."""
        self.store.remember_group_owner(chat, owner)
        self.store.remember_staff([owner], self.clock())

    def forget_group(self, chat: str) -> None:
        """Forget a customer group's owner: WeCom said it changed hands, or the group was dismissed."""
        self.store.forget_group(chat)

    def remember_staff(self, userids: Collection[str]) -> None:
        """Remember that these userids are staff members (WeCom listed them with `type` 1 in a customer group)."""
        self.store.remember_staff(userids, self.clock())

    def staff_among(self, userids: Collection[str]) -> set[str]:
        """Which of these userids are known to be staff members."""
        return self.store.staff_among(userids)

    def is_staff(self, userid: str) -> bool:
        """Whether `userid` is known to be a staff member."""
        return bool(self.store.staff_among([userid]))

    def owner(self, customer: str) -> str | None:
        """The staff member who added the customer (the latest to, of several), if known."""
        return self.store.contact_owner(customer)

    def take_welcome_code(self, customer: str) -> str | None:
        """The customer's welcome code if it is still valid; it is given out once."""
        return self.store.take_welcome_code(customer, self.clock(), WELCOME_WINDOW)
