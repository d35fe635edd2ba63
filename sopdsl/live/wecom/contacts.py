"""What the callbacks taught about customers and groups, for the executor: owners and welcome codes.

Input: `Contact`s from `add_external_contact` callbacks, the owners the executor asked of WeCom,
and the callbacks that make an owner stale (a customer who deleted their owner, a group handed to
another owner). Output: a customer's owner (跟进人, the staff member who added them: the sender
of their messages and the `userid` of `mark_tag`), a customer group's owner (the sender of its
mass sends) and, once and only within `WELCOME_WINDOW` seconds, the welcome code that lets the
welcome go out through `send_welcome_msg`; and the staff members seen joining customer groups, so
that their leaving is not fed either. Kept in memory: the callback receiver and the
executor share one process in `sopdsl run`; an owner not known here is asked of WeCom.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sopdsl.live.wecom.events import Contact

WELCOME_WINDOW = 20.0  # seconds: WeCom takes a welcome code only this long after its callback
_KEEP = 100_000  # owners remembered; the oldest are forgotten (and asked of WeCom again)
_SPENT = 10_000  # welcome codes given out, remembered so a callback sent again cannot re-arm one


class Contacts:
    """Owners and welcome codes by customer id, safe to share between threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._codes: dict[str, tuple[str, float]] = {}
        self._spent: OrderedDict[str, None] = OrderedDict()
        self._groups: dict[str, str] = {}  # customer group chat id -> its owner
        self._staff: OrderedDict[str, None] = OrderedDict()  # userids groupchat/get called staff
        self._lock = threading.Lock()

    def learn(self, contact: Contact) -> None:
        """Remember a customer's owner and, if the callback had one, their welcome code."""
        with self._lock:
            self._remember(contact.external_userid, contact.owner)
            # WeCom sends a callback again when our answer is late: its code may be used already.
            if contact.welcome_code and contact.welcome_code not in self._spent:
                self._codes[contact.external_userid] = (contact.welcome_code, self.clock())
            self._drop_stale()

    def remember_owner(self, customer: str, owner: str) -> None:
        """Remember an owner found otherwise (asked of WeCom)."""
        with self._lock:
            self._remember(customer, owner)

    def forget_owner(self, customer: str, owner: str) -> None:
        """Forget that `owner` is the customer's owner (the customer deleted them, or they the customer)."""
        with self._lock:
            if self._owners.get(customer) == owner:
                del self._owners[customer]

    def group_owner(self, chat: str) -> str | None:
        """The owner of a customer group, if known."""
        with self._lock:
            return self._groups.get(chat)

    def remember_group_owner(self, chat: str, owner: str) -> None:
        """Remember a customer group's owner (asked of WeCom)."""
        with self._lock:
            self._groups[chat] = owner

    def forget_group(self, chat: str) -> None:
        """Forget a customer group's owner: WeCom said it changed hands, or the group was dismissed."""
        with self._lock:
            self._groups.pop(chat, None)

    def remember_staff(self, userid: str) -> None:
        """Remember that `userid` is a staff member (WeCom listed them with `type` 1 in a customer group)."""
        with self._lock:
            self._staff[userid] = None
            self._staff.move_to_end(userid)
            while len(self._staff) > _KEEP:
                self._staff.popitem(last=False)

    def is_staff(self, userid: str) -> bool:
        """Whether `userid` was seen as a staff member (since the process started)."""
        with self._lock:
            return userid in self._staff

    def owner(self, customer: str) -> str | None:
        """The staff member who added the customer, if known."""
        with self._lock:
            return self._owners.get(customer)

    def take_welcome_code(self, customer: str) -> str | None:
        """The customer's welcome code if it is still valid; it is given out once."""
        with self._lock:
            found = self._codes.pop(customer, None)
            if found is not None:
                self._spent[found[0]] = None
                while len(self._spent) > _SPENT:
                    self._spent.popitem(last=False)
            now = self.clock()
            self._drop_stale()
        if found is None or now - found[1] > WELCOME_WINDOW:
            return None
        return found[0]

    def _drop_stale(self) -> None:
        # Codes of customers no playbook greeted would otherwise pile up.
        now = self.clock()
        for customer, (_, at) in list(self._codes.items()):
            if now - at > WELCOME_WINDOW:
                del self._codes[customer]

    def _remember(self, customer: str, owner: str) -> None:
        self._owners[customer] = owner
        self._owners.move_to_end(customer)
        while len(self._owners) > _KEEP:
            self._owners.popitem(last=False)
