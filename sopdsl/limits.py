"""The limits of what an id, a name, a label or a text value may hold, written once.

Input: a value and what to call it. Output: what is wrong with it, in the words the live service
answers with, or None. The live door (`live/intake.py`, `live/record_limits.py`) raises its errors
with these words and the dry run (fixtures, timelines) reports them as located diagnostics, so a
fixture `sopdsl test` passes is never refused when its playbooks go live. Imports nothing from
`sopdsl`: every stage may use it.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Characters of an id (a member, a group, an event, a tag or custom event's name, an inviter).
# PostgreSQL indexes at most 2,704 bytes a row: a member id of 3,000 was journaled, then every
# apply of its action failed (the outbox orders rows by member), and the shard with it. WeCom's
# ids are under 64; 256 characters of 4 bytes each still fit an index row twice over.
MAX_ID = 256
# Characters of a name: a member's name and nickname, a group's name, the staff named as a group's
# operator or an owner, whoever claims a task. No index holds one, but every journal entry, snapshot,
# message and admin answer carries it as it is: a name of 1 MB was taken and rendered into every
# send to the member. WeChat's nicknames end at 32 characters and WeCom's names at 64.
MAX_NAME = 256
# Characters of an attribute's text value. A send renders it (`{{ member.city }}`), and every
# journal entry, snapshot and admin answer of the member carries it. WeCom sends a customer at
# most 4,000 bytes of text (SOP208), which 4,096 characters exceed whatever the script, so no
# value a message can carry whole is refused, while a 60 KB cell (an import line's limit) is.
MAX_TEXT = 4096

# Escapes `re` reads, not surrogates in the literal, which mypyc refuses.
SURROGATES = re.compile(r"[\ud800-\udfff]")
# C0 and C1 control characters and DEL: no platform's id holds one, and in the log (which names
# members and groups as they are) a line break forges a line, an escape drives the terminal.
# NUL is among them: PostgreSQL keeps no NUL in text.
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NAME_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # the same, but for a line break


def too_long(what: str, length: int, *, name: bool = False) -> str:
    """What to say of an id longer than `MAX_ID` characters (`name`: a name, than `MAX_NAME`)."""
    return f"{what} is {length} characters long; {'names' if name else 'ids'} are at most " + str(
        MAX_NAME if name else MAX_ID
    )


def control_in(value: str) -> str | None:
    """The first control character in `value` (C0, DEL or C1), if any."""
    found = CONTROLS.search(value)
    return None if found is None else found.group()


def with_control(what: str, char: str, holders: str = "ids") -> str:
    """What to say of an id (or of `holders`, such as the names of staff) holding a control character."""
    return (
        f"{what} holds a control character ({json.dumps(char)[1:-1]}); {holders} hold none "
        "(a line break in one forged lines of the service's log)"
    )


def name_problem(what: str, value: str, *, staff: bool = False) -> str | None:
    """What is wrong with a name (too long, a control character), or None; `staff`: the name of
    staff (an operator, an owner, a task's claimer), which may hold no line break either."""
    if len(value) <= MAX_NAME and value.isprintable():
        return None  # the common case, in C: no control character (nor surrogate) is printable
    if len(value) > MAX_NAME:
        return too_long(what, len(value), name=True)
    found = (CONTROLS if staff else NAME_CONTROLS).search(value)
    if found is None:
        return None
    if staff:  # a staff name may be taken as a WeCom userid (a task goes to it): held as an id is
        return with_control(what, found.group(), "names of staff")
    # A line break is the one a member's or a group's name may hold (`test_id_controls.py`): a
    # message renders it as a line, and no log line names them by name. An escape or a NUL
    # would reach the member's screen, or the staff's, as it is.
    shown = json.dumps(found.group())[1:-1]
    return f"{what} holds a control character ({shown}); names hold none but a line break"


def id_problem(value: Any, what: str) -> str | None:
    """What is wrong with an id (not text, empty, a lone surrogate, a control character, too
    long), or None."""
    if type(value) is str and len(value) <= MAX_ID and value.isprintable() and value.strip():
        return None  # the common case, in C: no control character (nor surrogate) is printable
    if not isinstance(value, str):
        return f"{what} should be text, got {type(value).__name__}"
    if not value.strip():
        return f"{what} is empty"
    if surrogate(value) is not None:
        return f"{what} holds a lone surrogate (half of a character)"
    if "\x00" in value:  # as an event's member or group (intake): PostgreSQL keeps no NUL in text
        return f"{what} holds a NUL character (\\u0000)"
    control = control_in(value)
    if control is not None:  # as an event's (intake): it would forge lines of the log
        return with_control(what, control)
    if len(value) > MAX_ID:  # as an event's (intake): PostgreSQL indexes no longer id
        return too_long(what, len(value))
    return None


def label_problem(value: Any, what: str) -> str | None:
    """What is wrong with a label (a tag, a channel, an attribute's or counter's name): not text,
    over `MAX_ID` or holding a control character, as an event's tag name is refused; or None."""
    if type(value) is str and len(value) <= MAX_ID and value.isprintable():
        return None  # the common case, in C: no control character is printable
    if not isinstance(value, str):
        return f"{what} should be text, got {type(value).__name__}"
    if len(value) > MAX_ID:
        return too_long(what, len(value))
    control = control_in(value)
    if control is not None:
        shown = json.dumps(control)[1:-1]
        return (
            f"{what} holds a control character ({shown}); tags, channels and the names of "
            "attributes and counters hold none, as ids"
        )
    return None


def text_problem(value: Any, what: str) -> str | None:
    """What is wrong with an attribute's value (text over `MAX_TEXT`), or None."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{what} is {len(value)} characters long; a text attribute is at most {MAX_TEXT}"
    return None


def surrogate(value: Any, path: str = "") -> str | None:
    """The field holding text with a lone surrogate (which no store or hash can encode), if any."""
    if isinstance(value, str):
        return path if SURROGATES.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            # Escaped: the path goes into an error answer, which cannot be encoded with a surrogate.
            shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
            where = f"{path}.{shown}" if path else shown
            if SURROGATES.search(str(key)):
                return where
            found = surrogate(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = surrogate(item, f"{path}.{index}")
            if found:
                return found
    return None


# The payload fields the engine keeps as a member's name: `name` of whatever event it first meets
# them by, `nickname` of a join or a rename.
DATA_NAMES = ("name", "nickname")
# A join's payload fields held to an id's limits: the inviter becomes the member's referrer, an id;
# the channel (`member.channel`) a label, as the admin API holds a member's.
JOIN_IDS = ("inviter", "channel")


def event_id_problem(field: str, value: str, *, in_data: bool = False) -> str | None:
    """What is wrong with an event's text field held to an id's limits (`member`, `group`, `name`,
    `id`; `in_data`: a join's `data.inviter` or `data.channel`), or None."""
    if len(value) <= MAX_ID and value.isprintable():
        return None  # the common case, in C: no control character is printable
    what = f"event field '{field}'"
    if not in_data and "\x00" in value:
        # PostgreSQL keeps no NUL in text: refused on every store alike, never half-way in a batch.
        return f"{what} holds a NUL character (\\u0000)"
    if len(value) > MAX_ID:
        return too_long(what, len(value))
    control = control_in(value)
    return None if control is None else with_control(what, control)


def event_name_problem(field: str, value: str) -> str | None:
    """What is wrong with a name an event's payload gives (`data.name`, `data.nickname`), or None."""
    return name_problem(f"event field '{field}'", value)


def event_problem(
    kind: str, member: str | None, group: str | None, name: str | None, data: Any
) -> tuple[str, str] | None:
    """The first field of an event the live door refuses for its size or its characters, with what
    is wrong with it, in the door's order (`live/intake.py`); None if there is none."""
    for field, value in (("kind", kind), ("member", member), ("group", group), ("name", name)):
        if value is not None:
            problem = event_id_problem(field, value)
            if problem is not None:
                return field, problem
    return event_data_problem(kind, data)


def event_data_problem(kind: str, data: Any) -> tuple[str, str] | None:
    """The first field of an event's payload the live door refuses for its size or its characters
    (a name, a join's inviter or channel), with what is wrong with it; None if there is none."""
    if not data or type(data) is not dict:
        return None
    if kind == "join":
        for key in JOIN_IDS:
            value = data.get(key)
            problem = event_id_problem(f"data.{key}", value, in_data=True) if type(value) is str else None
            if problem is not None:
                return f"data.{key}", problem
    for key in DATA_NAMES:
        value = data.get(key)
        problem = event_name_problem(f"data.{key}", value) if type(value) is str else None
        if problem is not None:
            return f"data.{key}", problem
    return None
