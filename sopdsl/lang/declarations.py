"""The checked language's declarations: attributes, counters, event and action types, coupons, groups,
calendars and their rules, templates and the policy.

Shared by the checked model and the plan (`sopdsl.lang`). Annotations are resolved by pydantic in
this module's namespace: every name they use is imported here at run time.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal, Self, TypeAlias

from pydantic import Field, model_validator

from sopdsl.enums import ValueType
from sopdsl.lang.base import DateSpan, Duration, Model
from sopdsl.lang.triggers import Scope


class Attribute(Model):
    """A member attribute the playbooks may read or set."""

    name: str
    type: ValueType
    title: str | None = None


class Counter(Model):
    """A numeric member counter (built-in ones count events; declared ones are added to)."""

    name: str
    title: str | None = None


class EventType(Model):
    """A custom event with a typed payload."""

    name: str
    title: str | None = None
    fields: dict[str, ValueType]


class ActionType(Model):
    """A custom action an embedding bot provides, with typed arguments."""

    name: str
    title: str | None = None
    fields: dict[str, ValueType]


class Coupon(Model):
    """A coupon that playbooks grant."""

    name: str
    title: str | None = None
    worth: float | None = None
    valid: Duration | None = None
    transferable: bool = True
    stock: int | None = None


class Group(Model):
    """A group declared by name (groups met only in timelines need no declaration)."""

    name: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    timezone: str | None = None
    operator: str | None = None


def _empty(value: tuple[object, ...] | str | bool | None) -> bool:
    return not value


class Weekly(Model):
    """Every listed weekday (0 = Monday) at the listed local times."""

    kind: Literal["weekly"] = "weekly"
    weekdays: tuple[int, ...]
    times: tuple[dt.time, ...]
    start: dt.date | None = None
    until: dt.date | None = None
    # `except`: local days it does not fire on. Left out of the plan's JSON when empty, so a plan
    # compiled before `except` existed keeps its content hash.
    skip: tuple[DateSpan, ...] = Field(default=(), exclude_if=_empty)


class Interval(Model):
    """Every `every` from a local start instant, optionally until a date."""

    kind: Literal["interval"] = "interval"
    every: Duration
    first: dt.datetime
    start: dt.date | None = None
    until: dt.date | None = None
    skip: tuple[DateSpan, ...] = Field(default=(), exclude_if=_empty)


class Dates(Model):
    """On the listed dates at the listed local times."""

    kind: Literal["dates"] = "dates"
    dates: tuple[dt.date, ...]
    times: tuple[dt.time, ...]


class Cron(Model):
    """A five-field cron expression, evaluated in local time."""

    kind: Literal["cron"] = "cron"
    expression: str
    start: dt.date | None = None
    until: dt.date | None = None
    skip: tuple[DateSpan, ...] = Field(default=(), exclude_if=_empty)


class ImageAttachment(Model):
    """`with image "posters/a.png"` (a file, relative to the project folder) or `media "…"`."""

    type: Literal["image"] = "image"
    path: str | None = None
    media_id: str | None = None

    @model_validator(mode="after")
    def _media(self) -> Self:
        _one_media(self.path, self.media_id)
        return self

    def detail(self) -> dict[str, str]:
        """As executors receive it in a send's `attachments`."""
        return _media_detail("image", self.path, self.media_id, "media_id")


class FileAttachment(Model):
    """`with file "docs/rules.pdf"` or `with file media "…"`."""

    type: Literal["file"] = "file"
    path: str | None = None
    media_id: str | None = None

    @model_validator(mode="after")
    def _media(self) -> Self:
        _one_media(self.path, self.media_id)
        return self

    def detail(self) -> dict[str, str]:
        """As executors receive it in a send's `attachments`."""
        return _media_detail("file", self.path, self.media_id, "media_id")


class LinkAttachment(Model):
    """`with link "标题" to "https://…" description "…" cover "https://…/c.png"`."""

    type: Literal["link"] = "link"
    title: str
    url: str
    description: str | None = None
    cover: str | None = None  # the card's picture, by URL (WeCom's link card takes no media id)

    def detail(self) -> dict[str, str]:
        """As executors receive it: WeCom's link fields (`desc`, `picurl`)."""
        found = {"type": "link", "title": self.title, "url": self.url}
        if self.description is not None:
            found["desc"] = self.description
        if self.cover is not None:
            found["picurl"] = self.cover
        return found


class MiniProgramAttachment(Model):
    """`with miniprogram "标题" appid "wx…" page "pages/…" cover "covers/a.png"` (or `cover media "…"`)."""

    type: Literal["miniprogram"] = "miniprogram"
    title: str
    appid: str
    page: str
    path: str | None = None  # the cover, a file of the project
    media_id: str | None = None  # or the cover's media id

    @model_validator(mode="after")
    def _media(self) -> Self:
        _one_media(self.path, self.media_id)
        return self

    def detail(self) -> dict[str, str]:
        """As executors receive it: WeCom's mini-program fields, the cover as `path` or `pic_media_id`."""
        cover = _media_detail("miniprogram", self.path, self.media_id, "pic_media_id")
        return {**cover, "title": self.title, "appid": self.appid, "page": self.page}


def _media_detail(kind: str, path: str | None, media_id: str | None, id_field: str) -> dict[str, str]:
    if path is not None:
        return {"type": kind, "path": path}
    assert media_id is not None  # `_one_media` holds for every attachment made
    return {"type": kind, id_field: media_id}


def _one_media(path: str | None, media_id: str | None) -> None:
    if (path is None) == (media_id is None):
        raise ValueError("an attachment's media is a path or a media_id, exactly one")


Attachment: TypeAlias = Annotated[
    ImageAttachment | FileAttachment | LinkAttachment | MiniProgramAttachment, Field(discriminator="type")
]
# WeCom takes at most this many attachments with a message's text (add_msg_template, send_welcome_msg).
MAX_ATTACHMENTS = 9
# What WeCom takes of a message to customers (add_msg_template, send_welcome_msg), in UTF-8 bytes: it
# refuses more. A Chinese character is 3 bytes, so 4,000 bytes are about 1,333 of them. An app
# message to staff (message/send: a task, a send to the operator) it cuts at "app text" instead.
WECOM_BYTES: dict[str, int] = {
    "text": 4000,
    "link title": 128,
    "link description": 512,
    "miniprogram title": 64,
    "app text": 2048,
}


class Template(Model):
    """A Jinja2 message template, validated and with the variables it reads, and what goes with
    its text: attachments, and whom a group send @-mentions."""

    name: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    source: str
    variables: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[Literal["member"], ...] = ()
    loc: str


class Overflow(enum.Enum):
    """What happens to an action over a cap."""

    DEFER = "defer"
    DROP = "drop"


class CapNoun(enum.Enum):
    """What a cap counts."""

    SEND = "send"
    KICK = "kick"
    COUPON = "coupon"
    INVITE = "invite"


class CapSubject(enum.Enum):
    """Whose actions a cap counts."""

    MEMBER = "member"
    GROUP = "group"
    ALL = "all"


class CapPeriod(enum.Enum):
    """The calendar period a cap resets on (local time)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Cap(Model):
    """`at most 3 sends [of templates tagged "promo"] per member per day [via mass] [else drop]`."""

    limit: int
    noun: CapNoun
    subject: CapSubject
    period: CapPeriod
    channel: str | None = None
    overflow: Overflow = Overflow.DEFER
    loc: str
    # Sends of templates with any of these tags are all the cap counts (none: every send). Left
    # out of the plan's JSON when empty, so a plan compiled before keeps its hash.
    tags: tuple[str, ...] = Field(default=(), exclude_if=_empty)
    # The platform's own limit (a `platform` block's `at most N messages per member per PERIOD`),
    # not the policy's; and whether the messages staff are asked to send in tasks count against it.
    platform: bool = Field(default=False, exclude_if=_empty)
    tasks: bool = Field(default=False, exclude_if=_empty)

    def counts(self, template_tags: tuple[str, ...]) -> bool:
        """Whether a send of a template with these tags counts against this cap."""
        return not self.tags or not set(self.tags).isdisjoint(template_tags)

    def text(self) -> str:
        """The cap as the policy writes it: `at most 3 sends of templates tagged "promo" per group
        per day`, `at most 4 sends per member per month via mass`."""
        of = " of templates tagged " + ", ".join(f'"{t}"' for t in self.tags) if self.tags else ""
        per = "" if self.subject is CapSubject.ALL else f" per {self.subject.value}"
        via = f" via {self.channel}" if self.channel is not None else ""
        if self.platform:
            tasks = " and tasks' messages" if self.tasks else ""
            return f"the platform's limit of {self.limit} messages{per} per {self.period.value}{via}{tasks}"
        return f"at most {self.limit} {self.noun.value}s{of}{per} per {self.period.value}{via}"


class ContentMix(Model):
    """At least `percent` of scheduled sends in the scoped groups use templates tagged `tag`."""

    percent: float
    tag: str
    scope: Scope
    loc: str


class Platform(Model):
    """What the platform (WeCom) allows, declared once: its per-customer mass-message limit
    (compiled into the policy as a cap with `platform` set), how many attachments a message may
    carry, and the actions it cannot perform for customer groups, which become staff tasks."""

    title: str | None = None
    attachments: int | None = None
    cannot: tuple[str, ...] = ()
    loc: str


class Policy(Model):
    """Delivery policy the engine enforces for every playbook."""

    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    caps: tuple[Cap, ...] = ()
    protected_tags: tuple[str, ...] = ()
    content_mix: tuple[ContentMix, ...] = ()
    # `escalate tasks to "陈主管"`: the chief owner, who gets every staff task still undone at its
    # deadline. Left out of the plan's JSON when unset, so a plan compiled before keeps its hash.
    escalate_to: str | None = Field(default=None, exclude_if=_empty)


CalendarRule: TypeAlias = Annotated[Weekly | Interval | Dates | Cron, Field(discriminator="kind")]


class Calendar(Model):
    """A named series of local instants."""

    name: str
    title: str | None = None
    rule: CalendarRule


class CalRef(Model):
    """A calendar, shifted by offsets and optionally pinned to a local time of day."""

    calendar: str | None = None
    inline: CalendarRule | None = None
    offsets: tuple[tuple[bool, Duration], ...] = ()
    at: dt.time | None = None
