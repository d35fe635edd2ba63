"""A staff task as a WeCom app message: what the assignee reads in WeCom.

Input: a `task` or `escalate` action (the engine's `engine/tasks.py`: its text, deadline, whom it
is about, the message staff are asked to send with its attachments). Output: the text of the
`message/send` the executor sends the assignee from the app (`agent_id`), within WeCom's 2,048
bytes for a text message. Staff send the asked message themselves (WeCom makes them confirm a
mass send anyway), so its attachments are named, not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopdsl.engine.actions import Action
from sopdsl.lang import WECOM_BYTES

# Bytes WeCom keeps of a text app message (message/send): the checker's number (SOP208).
TEXT_LIMIT = WECOM_BYTES["app text"]
STAFF_KINDS = ("task", "escalate")  # the action kinds sent to staff as app messages


def task_text(action: Action, key: str) -> str:
    """The app message of a task (or of its escalation), its key last so staff can quote it."""
    detail = action.detail
    escalated = action.kind == "escalate"
    head = "【逾期待办】" if escalated else "【待办】"
    lines = [head + str(detail.get("text") or "")]
    if escalated and detail.get("undone_by"):
        lines.append(f"原负责人：{detail['undone_by']}（截止时仍未完成）")
    elif detail.get("due"):
        lines.append(f"截止：{_minute(str(detail['due']))}")
    about = [f"客户 {action.member}" if action.member else "", f"群 {action.group}" if action.group else ""]
    if any(about):
        lines.append("对象：" + "，".join(a for a in about if a))
    if detail.get("over_limit"):
        lines.append(f"注意：平台限额已满（{detail['over_limit']}），此消息可能被拒")
    message = detail.get("message")
    if message:
        lines += ["请发送：", str(message)]
    elif detail.get("message_error"):
        lines.append(f"请自拟消息（模板 {detail.get('template')} 未能生成：{detail['message_error']}）")
    attachments = [_attachment(a) for a in detail.get("attachments") or ()]
    if attachments:
        lines.append("附件：" + "；".join(attachments))
    return _within(lines, f"任务：{detail.get('task') if escalated else key}")


def _minute(iso: str) -> str:
    # `2026-03-09T09:00:00+08:00` → `2026-03-09 09:00 (+08:00)`: what staff read at a glance.
    date, _, rest = iso.partition("T")
    return f"{date} {rest[:5]} ({rest[8:]})" if len(rest) > 8 else iso


def _attachment(given: Any) -> str:
    if not isinstance(given, Mapping):
        return str(given)
    kind = str(given.get("type", ""))
    names = {"image": "图片", "file": "文件", "video": "视频", "link": "链接", "miniprogram": "小程序"}
    what = given.get("title") or given.get("path") or given.get("media_id") or ""
    where = f" {given['url']}" if kind == "link" and given.get("url") else ""
    return f"{names.get(kind, kind)}「{what}」{where}"


def cut(text: str, room: int = TEXT_LIMIT) -> str:
    """`text` within `room` bytes of UTF-8: as it is if it fits, else cut at a whole character and
    ended with "…", rather than left for WeCom to cut without a sign (an app message)."""
    if len(text.encode()) <= room:
        return text
    return text.encode()[: room - len("…".encode())].decode(errors="ignore") + "…"


def _within(lines: list[str], last: str) -> str:
    """The lines and the last one, the body cut (with …) so the whole stays within TEXT_LIMIT bytes."""
    tail = "\n" + last
    return cut("\n".join(lines), TEXT_LIMIT - len(tail.encode())) + tail
