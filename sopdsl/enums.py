"""The closed sets the syntax tree and the checked model share, defined once.

Imports nothing from sopdsl, so the syntax, the checker, the plan and the engine can all use it
without an import cycle and without the engine loading the parser (or Lark).
"""

from __future__ import annotations

import enum
from typing import Literal, get_args


class EventKind(enum.Enum):
    """Event kinds the engine knows. Custom events carry their declared name separately;
    `TASK_DONE` is raised by the engine for an assigned task and cannot be written in a playbook."""

    JOIN = "join"
    LEAVE = "leave"
    MESSAGE = "message"
    ORDER = "order"
    INVITE = "invite"
    REPORT = "report"
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    RENAME = "rename"
    CUSTOM = "custom"
    TASK_DONE = "task_done"


class Repeat(enum.Enum):
    """How often a member may enter a playbook: `repeat once`, `repeat always`, `repeat after D`
    (`COOLDOWN`; the value is the model's, which plans store)."""

    ONCE = "once"
    ALWAYS = "always"
    COOLDOWN = "cooldown"


class ValueType(enum.Enum):
    """Types of attributes, event fields and action arguments."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"


# The attachment types a template may carry (`with image "a.png"`), and of each, which of its
# media names a file of the project: the image or file itself, or a mini-program card's cover.
AttachmentType = Literal["image", "link", "miniprogram", "file"]
ATTACHMENT_TYPES: tuple[AttachmentType, ...] = get_args(AttachmentType)
ATTACHMENT_FILE_MEDIA: dict[str, Literal["first", "cover"]] = {
    "image": "first",
    "file": "first",
    "miniprogram": "cover",
}
