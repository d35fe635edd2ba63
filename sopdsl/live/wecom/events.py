"""WeCom's customer and customer-group change events, as sopdsl events.

Input: the decrypted XML of one callback (`change_external_contact`, `change_external_chat`),
and the custom events the plan declares. Output: the events to feed the runtime (JSON objects,
as `POST /events` takes them), each with an `id` made from the callback's own identifiers so a
callback WeCom delivers again is a duplicate, not a second join; and what the callback said
about a contact (its owner and welcome code, or an owner it no longer has) and a customer group
(a new owner), for the executor.

| WeCom callback | sopdsl event |
|---|---|
| `change_external_chat` `update` `add_member` | `join`, one per member of `MemChangeList`, `data.channel` from `JoinScene` |
| `change_external_chat` `update` `del_member` | `leave`, one per member, `data.quit` from `QuitScene` |
| `change_external_chat` `create`, `dismiss` | custom `wecom_group_created`, `wecom_group_dismissed` |
| `change_external_contact` `add_external_contact` | custom `wecom_contact_added` (`owner`, `state`) |
| `change_external_contact` `add_half_external_contact` | the same: the customer added a staff member who skips verification (免验证) and has not confirmed yet |
| `change_external_contact` `del_external_contact` | custom `wecom_contact_deleted` (`owner`, `source`) |
| `change_external_contact` `del_follow_user` | custom `wecom_contact_lost` (`owner`): the customer deleted the staff member |

A custom event goes to the runtime only if the playbooks declare it (`event NAME { ... }`),
with the fields it declares among those above; otherwise the callback is acknowledged and
ignored, since a runtime refuses an undeclared custom event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# JoinScene and QuitScene, as WeCom documents them for a customer group's member change.
JOIN_SCENES = {"0": "invited", "1": "invite_link", "3": "qrcode"}
QUIT_SCENES = {"0": "left", "1": "removed"}

# The custom events a callback may become, with the payload fields it can fill.
CONTACT_EVENTS = {
    "add_external_contact": "wecom_contact_added",
    # 外部联系人免验证添加成员: the customer has added the staff member, who has not confirmed yet.
    # WeCom sends it with UserID, ExternalUserID, State and a WelcomeCode, as for a contact added,
    # and that code is the only chance to greet them; so it is the same event to the playbooks.
    "add_half_external_contact": "wecom_contact_added",
    "del_external_contact": "wecom_contact_deleted",
    "del_follow_user": "wecom_contact_lost",
}
ADDED = ("add_external_contact", "add_half_external_contact")  # a customer added: owner, welcome code
CHAT_EVENTS = {"create": "wecom_group_created", "dismiss": "wecom_group_dismissed"}


class CallbackFormatError(ValueError):
    """A decrypted callback that is not the XML WeCom documents (the message says what is missing)."""


@dataclass(frozen=True)
class Contact:
    """What an `add_external_contact` (or `add_half_external_contact`) callback says about a customer: who added them, and the
    one-time code (valid 20 seconds) that lets `send_welcome_msg` greet them."""

    external_userid: str
    owner: str
    welcome_code: str | None
    at: int
    half: bool = False  # add_half_external_contact: the staff member has not confirmed yet


@dataclass(frozen=True)
class OwnerGone:
    """A `del_follow_user` or `del_external_contact` callback: `owner` and the customer are no longer
    each other's contacts, so the customer's sends must come from another staff member."""

    external_userid: str
    owner: str


@dataclass
class Mapped:
    """The events a callback becomes, what it says about a contact, and what was left out and why."""

    events: list[dict[str, Any]] = field(default_factory=list)
    contact: Contact | None = None
    ignored: list[str] = field(default_factory=list)
    owner_gone: OwnerGone | None = None
    # A customer group that changed hands (`change_owner`) or was dismissed: its owner is stale.
    group_changed: str | None = None


def parse(xml: str, what: str = "decrypted callback") -> dict[str, Any]:
    """The fields of a callback's `<xml>` element (lists kept as lists); `what` names it in errors."""
    import xmltodict  # wechatpy's dependency: only the callback, with the `wecom` extra, needs it

    try:
        # WeCom's XML declares no entities; refusing them keeps a crafted body from expanding.
        root = xmltodict.parse(xml, disable_entities=True)
    except Exception as exc:  # expat's ExpatError, or a ValueError for entities
        raise CallbackFormatError(f"the {what} is not XML: {exc}") from None
    body = root.get("xml") if isinstance(root, dict) else None
    if not isinstance(body, dict):
        raise CallbackFormatError(f"the {what} has no <xml> element")
    return body


def map_callback(body: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> Mapped:
    """The sopdsl events of one callback; `declared` maps a custom event's name to its fields."""
    event = _text(body, "Event") or _text(body, "InfoType")
    change = _text(body, "ChangeType")
    at = _int(_text(body, "CreateTime") or _text(body, "TimeStamp"))
    if event == "change_external_chat":
        return _chat(body, change, at, declared)
    if event == "change_external_contact":
        return _contact(body, change, at, declared)
    return Mapped(ignored=[f"{event or 'an unnamed'} callback: not a customer or customer-group change"])


def _chat(body: Mapping[str, Any], change: str, at: int, declared: Mapping[str, Any]) -> Mapped:
    chat = _required(body, "ChatId")
    if change == "update":
        detail = _text(body, "UpdateDetail")
        if detail not in ("add_member", "del_member"):
            return Mapped(
                ignored=[f"customer group {chat} update {detail or '?'}: no sopdsl event for it"],
                group_changed=chat if detail == "change_owner" else None,
            )
        version = _text(body, "CurMemVer") or str(at)
        members = _members(body.get("MemChangeList"))
        if not members:
            return Mapped(ignored=[f"customer group {chat} {detail}: MemChangeList is empty"])
        mapped = Mapped()
        for member in members:
            if detail == "add_member":
                scene = JOIN_SCENES.get(_text(body, "JoinScene"), "other")
                kind, data = "join", {"channel": scene}
            else:
                kind, data = "leave", {"quit": QUIT_SCENES.get(_text(body, "QuitScene"), "other")}
            mapped.events.append(
                {
                    "kind": kind,
                    "time": at,
                    "member": member,
                    "group": chat,
                    "data": data,
                    "id": f"wecom:{chat}:{version}:{kind}:{member}",
                }
            )
        return mapped
    name = CHAT_EVENTS.get(change)
    if name is None:
        return Mapped(ignored=[f"customer group {chat} {change or '?'}: no sopdsl event for it"])
    mapped = _custom(name, None, chat, at, {}, declared, f"wecom:{chat}:{change}:{at}")
    if change == "dismiss":
        mapped.group_changed = chat
    return mapped


def _contact(body: Mapping[str, Any], change: str, at: int, declared: Mapping[str, Any]) -> Mapped:
    name = CONTACT_EVENTS.get(change)
    if name is None:
        return Mapped(ignored=[f"external contact {change or '?'}: no sopdsl event for it"])
    customer = _required(body, "ExternalUserID")
    owner = _required(body, "UserID")
    payload = {"owner": owner, "state": _text(body, "State"), "source": _text(body, "Source")}
    mapped = _custom(name, customer, None, at, payload, declared, f"wecom:{customer}:{owner}:{change}:{at}")
    if change in ADDED:
        code = _text(body, "WelcomeCode") or None
        mapped.contact = Contact(customer, owner, code, at, half=change == "add_half_external_contact")
    else:
        mapped.owner_gone = OwnerGone(customer, owner)
    return mapped


def _custom(
    name: str,
    member: str | None,
    group: str | None,
    at: int,
    payload: Mapping[str, str],
    declared: Mapping[str, Mapping[str, Any]],
    event_id: str,
) -> Mapped:
    fields = declared.get(name)
    if fields is None:
        return Mapped(ignored=[f"{name}: the playbooks declare no such event"])
    unknown = [f for f in fields if f not in payload]
    if unknown:
        return Mapped(
            ignored=[
                f"{name}: declared with field '{unknown[0]}', which WeCom does not send "
                f"(it sends: {', '.join(payload) or 'none'})"
            ]
        )
    event: dict[str, Any] = {"kind": "custom", "name": name, "time": at, "id": event_id}
    if member is not None:
        event["member"] = member
    if group is not None:
        event["group"] = group
    data = {f: payload[f] for f in fields}
    if data:
        event["data"] = data
    return Mapped(events=[event])


def _members(value: Any) -> list[str]:
    """`MemChangeList` as member ids: `<Item>` children, or the older comma-separated text."""
    if isinstance(value, dict):
        items = value.get("Item")
        listed = items if isinstance(items, list) else [items]
        return [str(item).strip() for item in listed if item is not None and str(item).strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value.strip() if isinstance(value, str) else ""


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _text(body, key)
    if not value:
        raise CallbackFormatError(f"the callback has no {key}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CallbackFormatError(f"the callback's CreateTime is not a number: {text!r}") from None
