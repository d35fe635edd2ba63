"""Members and groups held to the limits of `sopdsl.limits`, field by field.

Input: a `MemberRecord` or a `GroupRecord`. Output: each field at fault with what is wrong with
it, in the words the live service answers with. The live runtime raises the first as its
`RecordError` (`live/record_limits.py`); the dry run reports them located in a fixture or a
timeline, so the two refuse the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.limits import MAX_ID, MAX_NAME, MAX_TEXT, id_problem, label_problem, name_problem, text_problem

Problem = tuple[str, str]  # the field (`tags.0`, `attributes.city`) and what is wrong with it


def member_problems(record: MemberRecord, *, history: bool = True) -> Iterator[Problem]:
    """Each member field over its limit or holding what no field may, in the live door's order
    (`history=False`: not the groups of its history, which a fixture or a timeline names in the
    member's `groups` entries, checked there)."""
    if _plainly_fine(record, history):
        return iter(())
    return _member_problems(record, history)


def _plainly_fine(record: MemberRecord, history: bool) -> bool:
    """Whether the record is one `_member_problems` finds nothing in, told at once for the common
    one (its texts short and printable); False sends it to `_member_problems`, which says.

    Why: every member line of a timeline is checked, and the generators cost about 1.3 µs a
    record. One `isprintable` over the texts joined tells what each field's check tells of its
    characters (no control character, surrogate nor NUL is printable, nor whitespace but a space),
    and texts of at most `_SHORT` characters in all are each within their limit.
    """
    if history and (record.group_joined_at or record.group_last_message_at):
        return False  # a history's groups, checked field by field: few records have one
    try:
        joined = "".join(
            (
                record.id,
                record.name,
                record.nickname,
                "" if record.referrer is None else record.referrer,
                "" if record.channel is None else record.channel,
                "" if record.owner is None else record.owner,
                "".join(record.groups),
                "".join(record.tags),
                "".join(record.attributes) if record.attributes else "",
                "".join(record.counters) if record.counters else "",
            )
        )
    except TypeError:  # a field that is not text
        return False
    if len(joined) > _SHORT or not joined.isprintable():
        return False
    if _blank(record.id) or (record.referrer is not None and _blank(record.referrer)):
        return False
    for group in record.groups:
        if _blank(group):
            return False
    if record.attributes:
        for value in record.attributes.values():
            if isinstance(value, str) and len(value) > MAX_TEXT:
                return False
    return True


def _blank(text: str) -> bool:
    """Whether a printable id is empty or only spaces (as `id_problem` reads `not value.strip()`)."""
    return not text or (text[0] == " " and not text.strip())


# Texts of at most this many characters in all are each within the limit of an id, a label, a name.
_SHORT: Final = min(MAX_ID, MAX_NAME)


def _member_problems(record: MemberRecord, history: bool) -> Iterator[Problem]:
    yield from _id(record.id, "id", "the id")
    yield from _names(record, ("name", "nickname"), ("owner",))
    # A member's groups, referrer and the groups of its history are ids the engine acts on (a
    # send to the group, a reward to the referrer), so they are held to an event's rules for ids.
    for index, group in enumerate(record.groups):
        yield from _id(group, f"groups.{index}", f"groups.{index}")
    if record.referrer is not None:
        yield from _id(record.referrer, "referrer", "referrer")
    for field in ("group_joined_at", "group_last_message_at") if history else ():
        for group in getattr(record, field):
            yield from _id(group, field, f"a group of {field}")
    yield from _labels(record.tags, record.channel)
    # Names a playbook reads them by (`member.city`, `member.points`), as an event's tag is.
    for kind in ("attributes", "counters"):
        for key in getattr(record, kind):
            yield from _label(key, kind, f"the name of one of {kind}")
    # Items as they are, not as the annotation has them: compiled code would check each key is
    # text, and raise TypeError on a name the label check above has already refused.
    attributes: Iterable[tuple[Any, Any]] = record.attributes.items()
    for key, value in attributes:
        problem = text_problem(value, f"attributes.{key}")
        if problem is not None:
            yield f"attributes.{key}", problem


def group_problems(record: GroupRecord) -> Iterator[Problem]:
    """Each group field over its limit or holding what no field may, in the live door's order."""
    yield from _id(record.id, "id", "the id")
    yield from _names(record, ("name",), ("operator", "owner"))
    yield from _labels(record.tags, None)


def _id(value: Any, field: str, what: str) -> Iterator[Problem]:
    problem = id_problem(value, what)
    if problem is not None:
        yield field, problem


def _label(value: Any, field: str, what: str) -> Iterator[Problem]:
    problem = label_problem(value, what)
    if problem is not None:
        yield field, problem


def _labels(tags: Iterable[Any], channel: Any) -> Iterator[Problem]:
    for index, tag in enumerate(tags):
        yield from _label(tag, f"tags.{index}", f"tags.{index}")
    if channel is not None:
        yield from _label(channel, "channel", "channel")


def _names(record: Any, names: tuple[str, ...], staff: tuple[str, ...]) -> Iterator[Problem]:
    """A name field (`staff`: the name of staff) too long or holding a control character, as an
    event's `data.name` is refused."""
    for field in (*names, *staff):
        value = getattr(record, field)
        if value is None:
            continue
        if not isinstance(value, str):
            yield field, f"{field} should be text, got {type(value).__name__}"
            continue
        problem = name_problem(field, value, staff=field in staff)
        if problem is not None:
            yield field, problem
