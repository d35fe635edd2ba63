"""The WeCom executor: sends, tags and staff tasks carried out through the WeCom API.

Input: `send`, `tag`, `untag`, `task` and `escalate` actions from the outbox, with their
idempotency keys. Output: WeCom calls (`api.py`):

| action | WeCom call |
|---|---|
| send to a member, within 20 s of their `add_external_contact` callback | `externalcontact/send_welcome_msg` with its welcome code (if WeCom answers 41051, the code spent, as below) |
| send to a member, otherwise | `externalcontact/add_msg_template`, `chat_type` `single`, from their owner: staff confirm it in the WeCom app |
| send to a group | `externalcontact/add_msg_template`, `chat_type` `group`, from the group's owner (`groupchat/get`): staff confirm it |
| send to the operator | `message/send` to the operator's userid from the app (`agent_id`), its text cut to 2,048 bytes with "…" as a task's is (WeCom would cut it without a sign) |
| tag, untag a member | `externalcontact/mark_tag` by the member's owner, with the tag ids the settings map names to |
| task, escalate | `message/send` to the assignee's userid from the app (`agent_id`): the task's text, deadline, whom it is about, the message staff are asked to send and its attachments, named (`tasks.py`) |

A task's assignee is a name as the playbooks and registrations write it (the contact's owner, the
group's operator, the policy's chief owner), made a WeCom userid by the settings' `userids` map
(a name not in it is taken as a userid). A task for an owner the sopdsl records do not know goes
to the contact's owner in WeCom (`externalcontact/get`); one for a group without an operator, to
the customer group's owner (`groupchat/get`). WeCom drops a repeat of the same text to the same
user within half an hour (`enable_duplicate_check`), and the text carries the task's key, so an
outbox retry does not message staff twice. Without `agent_id` the executors file refuses
`task: wecom` and `escalate: wecom` at load time (`unable`), and `send: wecom` when the plan sends
to the operator.

Attachments in an action's `attachments` (image, link, miniprogram, file; a file by `path` is
uploaded with `media/upload` once per file and its media_id reused for 3 days, less an hour)
go with the text. An action's `mentions` (the members a group send @-mentions, from a template
`mentioning member`) cannot be carried: `add_msg_template` has no field for them, so the group
send goes without and the log says so. WeCom offers no API to remove a member of a customer group or dissolve one,
so `kick` and `dissolve` are not carried out here: the executors file refuses them.

A send to customers over WeCom's byte limits (`lang.WECOM_BYTES`: 4,000 bytes of text) fails before
any call, naming the template. A mass send, a welcome message or a message to the operator whose
answer is lost (a timeout after the request was written) is not sent again (`api.REPEATABLE`): it
fails, saying where staff look for it before they requeue it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sopdsl.engine.actions import Action
from sopdsl.lang import WECOM_BYTES
from sopdsl.live.store_contacts import ContactStore
from sopdsl.live.wecom.api import WeComApi, WeComError
from sopdsl.live.wecom.contacts import Contacts
from sopdsl.live.wecom.tasks import STAFF_KINDS, TEXT_LIMIT, cut, task_text

if TYPE_CHECKING:
    from sopdsl.live.wecom.callback import WeComCallback

log = logging.getLogger("sopdsl.wecom")

KINDS = ("send", "tag", "untag", *STAFF_KINDS)  # what this executor carries out
DUPLICATE_WINDOW = 1800  # seconds WeCom drops a repeated app message (a retried task's)
MEDIA_LIFETIME = 3 * 86400 - 3600  # seconds a temporary media_id is reused (WeCom keeps it 3 days)
MEDIA_KINDS = {"image": "image", "file": "file", "video": "video"}
WELCOME_SPENT = 41051  # send_welcome_msg: the welcome code can no longer be used


def _fail(message: str) -> WeComError:
    return WeComError(message, errcode=None, outcome="fail")


class WeComExecutor:
    """Carries out sends, tags and staff tasks through one WeCom app; call it as `executor(action, key)`."""

    def __init__(
        self,
        api: WeComApi,
        *,
        contacts: Contacts | None = None,
        tags: Mapping[str, str] | None = None,
        agent_id: int | None = None,
        userids: Mapping[str, str] | None = None,
        root: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.contacts = contacts if contacts is not None else Contacts()
        self.tags = dict(tags or {})  # sopdsl tag name -> WeCom tag id (etXXXX)
        self.agent_id = agent_id
        self.userids = dict(userids or {})  # staff name as playbooks write it -> WeCom userid
        self.root = root or Path.cwd()  # attachment paths are relative to it
        self.clock = clock
        self._media: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.callback: WeComCallback | None = None  # the app's callback receiver, sharing `contacts`
        # (key, msgid) of the latest mass sends staff are to confirm; each is logged too.
        self.sent: deque[tuple[str, str]] = deque(maxlen=1000)

    def keep_in(self, store: ContactStore) -> None:
        """Keep the owners, welcome codes and staff the callbacks teach in the runtime's store, which
        every worker shares (the runtime calls it; `KeepsState`)."""
        self.contacts.keep_in(store)

    def __call__(self, action: Action, key: str) -> None:
        """Carry out one action; raise `WeComError` if it did not happen."""
        if action.kind == "send":
            self._send(action, key)
        elif action.kind in ("tag", "untag"):
            self._tag(action)
        elif action.kind in STAFF_KINDS:
            self._staff_task(action, key)
        else:
            raise _fail(
                f"the WeCom executor does not carry out '{action.kind}' actions (only {', '.join(KINDS)})"
            )

    def unable(self, kind: str, operator_sends: Sequence[str] = ()) -> str | None:
        """Why this executor, as configured, cannot carry out `kind` (None: it can) for a plan whose
        sends to the operator are at `operator_sends`; the executors file says it at load time."""
        if kind not in KINDS:
            return f"{kind}: the WeCom executor carries out {', '.join(KINDS)}; route {kind} elsewhere"
        if self.agent_id is not None:
            return None
        if kind in STAFF_KINDS:
            return (
                f"{kind}: wecom sends each staff task to its assignee as an app message: set agent_id "
                "(the AgentId of the app whose secret is given) in the wecom table"
            )
        if kind == "send" and operator_sends:
            more = f" and {len(operator_sends) - 1} more" if len(operator_sends) > 1 else ""
            return (
                f"send: the playbooks send to the operator (at {operator_sends[0]}{more}), which wecom "
                "does as an app message: set agent_id (the AgentId of the app whose secret is given) "
                "in the wecom table, or route send elsewhere"
            )
        return None

    # ---- sends ---------------------------------------------------------------------------------

    def _send(self, action: Action, key: str) -> None:
        text = str(action.detail.get("text", ""))
        if action.target != "operator":
            _within_limits(action, text)  # before any upload: WeCom would refuse the send
        attachments = [self._attachment(a) for a in action.detail.get("attachments") or ()]
        content: dict[str, Any] = {}
        if text:
            content["text"] = {"content": text}
        if attachments:
            content["attachments"] = attachments
        if not content:
            raise _fail(f"send {action.detail.get('template')}: nothing to send (no text, no attachments)")
        if action.target == "group":
            group = _required(action.group, "a group send needs the group (the customer group's chat id)")
            if action.detail.get("mentions"):
                log.info(
                    "wecom: mass send %s to %s goes without its @-mentions (add_msg_template has none)",
                    key,
                    group,
                )
            sender = self._group_owner(group)
            body = {"chat_type": "group", "chat_id_list": [group], "sender": sender, **content}
            answer = self._mass_send(action, f"group {group}", sender, body)
            self._confirming(key, answer)
        elif action.target == "operator":
            self._to_operator(action, text)
        else:
            member = _required(
                action.member, "a member send needs the member (the customer's external_userid)"
            )
            code = self.contacts.take_welcome_code(member)
            if code is not None:
                try:
                    self.api.post("externalcontact/send_welcome_msg", {"welcome_code": code, **content})
                    return
                except WeComError as exc:
                    if exc.outcome == "unknown":
                        raise _unsure(
                            action, f"the welcome message to {member}", exc, _WELCOME_CHECK
                        ) from None
                    # 41051: the customer wrote first, or staff greeted them by hand. The code is
                    # spent, but the owner can still send it: as a mass send, below.
                    if exc.errcode != WELCOME_SPENT:
                        raise
                    log.info("wecom: welcome code of %s spent (41051); %s goes as a mass send", member, key)
            sender = self.owner(member)
            body = {"chat_type": "single", "external_userid": [member], "sender": sender, **content}
            answer = self._mass_send(action, member, sender, body)
            if member in (answer.get("fail_list") or ()):
                raise _fail(
                    f"WeCom add_msg_template: {member} cannot be reached by {self.owner(member)} (fail_list)"
                )
            self._confirming(key, answer)

    def _mass_send(self, action: Action, to: str, sender: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """`add_msg_template`, which is not sent again when WeCom's answer is lost (`api.REPEATABLE`)."""
        try:
            return self.api.post("externalcontact/add_msg_template", body)
        except WeComError as exc:
            if exc.outcome != "unknown":
                raise
            check = _MASS_CHECK.format(sender=sender)
            raise _unsure(action, f"the mass send to {to} from {sender}", exc, check) from None

    def _confirming(self, key: str, answer: Mapping[str, Any]) -> None:
        # WeCom queues a mass send for its sender to confirm; the msgid tracks it.
        msgid = str(answer.get("msgid", ""))
        log.info("wecom: mass send %s queued for its sender to confirm (msgid %s)", key, msgid)
        with self._lock:
            self.sent.append((key, msgid))

    def _to_operator(self, action: Action, text: str) -> None:
        operator = action.detail.get("operator")
        if not operator:
            raise _fail(
                "a send to the operator needs the group's operator (a WeCom userid); the group has none"
            )
        if self.agent_id is None:
            raise _fail(
                "a send to the operator goes through the app's messages: set agent_id in the wecom settings"
            )
        userid = self.userid(str(operator))
        content = cut(text)  # WeCom would cut it too, without a sign (the checker's SOP208)
        if content != text:
            log.info("wecom: the app message to %s is cut to %s bytes", userid, f"{TEXT_LIMIT:,}")
        try:
            answer = self.api.post(
                "message/send",
                {"touser": userid, "msgtype": "text", "agentid": self.agent_id, "text": {"content": content}},
            )
        except WeComError as exc:
            if exc.outcome != "unknown":
                raise
            check = f"ask {userid} whether the app's message reached them"
            raise _unsure(action, f"the app message to {userid}", exc, check) from None
        _reached(userid, answer)

    # ---- staff tasks ---------------------------------------------------------------------------

    def _staff_task(self, action: Action, key: str) -> None:
        if self.agent_id is None:
            raise _fail(
                f"a {action.kind} goes to staff as an app message: set agent_id in the wecom settings"
            )
        userid = self._assignee(action)
        answer = self.api.post(
            "message/send",
            {
                "touser": userid,
                "msgtype": "text",
                "agentid": self.agent_id,
                "text": {"content": task_text(action, key)},
                "enable_duplicate_check": 1,
                "duplicate_check_interval": DUPLICATE_WINDOW,
            },
        )
        _reached(userid, answer)

    def _assignee(self, action: Action) -> str:
        """The userid a task goes to: its assignee, else the owner WeCom knows (contact or group)."""
        named = action.detail.get("assignee")
        if named:
            return self.userid(str(named))
        if action.kind == "task" and action.detail.get("to") == "owner" and action.member:
            return self.owner(action.member)
        if action.group:
            return self._group_owner(action.group)
        raise _fail(f"{action.kind} {key_of(action)}: nobody to send it to (no assignee, no group)")

    def userid(self, name: str) -> str:
        """The WeCom userid of a staff member named as the playbooks write them (`userids`)."""
        return self.userids.get(name, name)

    def _attachment(self, given: Any) -> dict[str, Any]:
        """An attachment as WeCom takes it: `{"msgtype": T, T: {...}}`, a file by path uploaded first."""
        if not isinstance(given, Mapping) or "type" not in given:
            raise _fail(f"an attachment must be a table with a type, got {given!r}")
        kind = str(given["type"])
        fields = {k: v for k, v in given.items() if k not in ("type", "path")}
        if "path" in given:
            media_kind = MEDIA_KINDS.get(kind)
            if media_kind is None and kind != "miniprogram":
                raise _fail(f"a {kind} attachment cannot be given by path")
            media = self._media_id(str(given["path"]), media_kind or "image")
            fields["pic_media_id" if kind == "miniprogram" else "media_id"] = media
        if kind not in ("image", "link", "miniprogram", "file", "video"):
            raise _fail(f"unknown attachment type '{kind}': image, link, miniprogram, file or video")
        return {"msgtype": kind, kind: fields}

    def _media_id(self, path: str, kind: str) -> str:
        with self._lock:
            cached = self._media.get(path)
        if cached is not None and self.clock() - cached[1] < MEDIA_LIFETIME:
            return cached[0]
        file = self.root / path
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise _fail(f"cannot read the attachment {path}: {exc.strerror or exc}") from None
        media = self.api.upload(kind, file.name, content)
        with self._lock:
            self._media[path] = (media, self.clock())
        return media

    # ---- owners and tags -----------------------------------------------------------------------

    def owner(self, customer: str) -> str:
        """The staff member who added a customer: learned from the callbacks, else asked of WeCom."""
        known = self.contacts.owner(customer)
        if known is not None:
            return known
        answer = self.api.get("externalcontact/get", {"external_userid": customer})
        follow = [f for f in answer.get("follow_user") or () if isinstance(f, Mapping) and f.get("userid")]
        if not follow:
            raise _fail(f"customer {customer} has no owner in WeCom (no follow_user)")
        # The earliest to add them is the owner (跟进人); later ones are colleagues.
        first = min(follow, key=lambda f: f["createtime"] if isinstance(f.get("createtime"), int) else 0)
        owner = str(first["userid"])
        self.contacts.remember_owner(customer, owner)
        return owner

    def _group_owner(self, group: str) -> str:
        # Kept with the contacts, which the callback tells when the group changes hands.
        known = self.contacts.group_owner(group)
        if known is not None:
            return known
        answer = self.api.post("externalcontact/groupchat/get", {"chat_id": group, "need_name": 0})
        chat = answer.get("group_chat")
        owner = chat.get("owner") if isinstance(chat, Mapping) else None
        if not owner:
            raise _fail(f"WeCom groupchat/get: customer group {group} has no owner")
        self.contacts.remember_group_owner(group, str(owner))
        return str(owner)

    def group_members(self, group: str) -> dict[str, dict[str, str]]:
        """What WeCom says of a customer group's members (`groupchat/get` with names), by id, as a
        join's data: `name`, and `nickname` (their group nickname) when set, and `type`: `staff` for a
        staff member (type 1), `customer` otherwise. Refreshes its owner."""
        answer = self.api.post("externalcontact/groupchat/get", {"chat_id": group, "need_name": 1})
        chat = answer.get("group_chat")
        if not isinstance(chat, Mapping):
            return {}
        if chat.get("owner"):
            self.contacts.remember_group_owner(group, str(chat["owner"]))
        found: dict[str, dict[str, str]] = {}
        for member in chat.get("member_list") or ():
            if not isinstance(member, Mapping) or not member.get("userid"):
                continue
            data = {
                "name": str(member.get("name") or ""),
                "nickname": str(member.get("group_nickname") or ""),
                # The receiver does not greet staff as customers (their userid is no external contact).
                "type": "staff" if str(member.get("type")) == "1" else "customer",
            }
            found[str(member["userid"])] = {k: v for k, v in data.items() if v}
        return found

    def _tag(self, action: Action) -> None:
        member = _required(
            action.member, f"a {action.kind} action needs the member (the customer's external_userid)"
        )
        names = [str(t) for t in action.detail.get("tags") or ()]
        unmapped = [n for n in names if n not in self.tags]
        if unmapped:
            raise _fail(
                f"no WeCom tag id for '{unmapped[0]}': map it under `tags` in the wecom settings "
                "(the id is the etXXXX of externalcontact/get_corp_tag_list)"
            )
        ids = [self.tags[n] for n in names]
        side = "remove_tag" if action.kind == "untag" else "add_tag"
        self.api.post(
            "externalcontact/mark_tag",
            {"userid": self.owner(member), "external_userid": member, side: ids},
        )


def key_of(action: Action) -> str:
    """How an action is named in an error: its playbook and key."""
    return f"{action.playbook}/{action.key}"


def _reached(userid: str, answer: Mapping[str, Any]) -> None:
    """Raise unless an app message reached `userid`."""
    # WeCom answers 0 even when it drops a receiver, naming it in `invaliduser` ("a|b"): the
    # message did not go, and a retry cannot change that.
    if userid in str(answer.get("invaliduser") or "").split("|"):
        raise _fail(
            f"WeCom message/send: {userid} is not a userid the app can reach (invaliduser); "
            "map the staff name to its WeCom userid under `userids` in the wecom settings"
        )


# What staff look for when WeCom's answer to a send was lost, before sending it again by hand.
_MASS_CHECK = (
    "check the WeCom admin console (客户联系 → 群发记录) or {sender}'s 群发助手 in the WeCom app for a "
    "mass send of it waiting to be confirmed: if there is one, {sender} confirms it there"
)
_WELCOME_CHECK = "check the customer's chat with their owner in WeCom for the welcome message"


def _unsure(action: Action, what: str, error: WeComError, check: str) -> WeComError:
    """An action whose WeCom call may have gone through: failed, not retried, saying what to check."""
    return WeComError(
        f"send {action.detail.get('template') or ''}: WeCom did not answer {what} ({error.cause}), and may "
        f"have received it. It is not sent again, so that nobody gets it twice: {check}; if it is "
        "not there, requeue the action (POST /admin/parked/KEY/requeue)",
        errcode=None,
        outcome="unknown",
        cause=error.cause,
    )


def _within_limits(action: Action, text: str) -> None:
    """Fail a send to customers whose text (or a card's title) is over what WeCom takes
    (`WECOM_BYTES`), naming the template and the limit, rather than leave WeCom's bare errcode."""
    parts = [("text", text)]
    for given in action.detail.get("attachments") or ():
        if isinstance(given, Mapping) and given.get("type") == "link":
            parts += [
                ("link title", str(given.get("title") or "")),
                ("link description", str(given.get("desc") or "")),
            ]
        elif isinstance(given, Mapping) and given.get("type") == "miniprogram":
            parts.append(("miniprogram title", str(given.get("title") or "")))
    template = action.detail.get("template") or "?"
    for part, value in parts:
        size, limit = len(value.encode()), WECOM_BYTES[part]
        if size > limit:
            raise _fail(
                f"send {template}: its {part} is {size:,} bytes in UTF-8 ({len(value):,} characters); "
                f"WeCom takes at most {limit:,} bytes and would refuse the message: shorten template "
                f"'{template}' (a Chinese character is 3 bytes)"
            )


def _required(value: str | None, message: str) -> str:
    if not value:
        raise _fail(message)
    return value
