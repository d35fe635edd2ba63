"""A member record over a limit is refused with the same words whichever way it is checked.

What a bot developer notices: a member line of a timeline (or a member at the live door) with a
name of 257 characters or an escape in a tag is refused, and says why, though most records are
passed at once by a quicker test than the field-by-field one (`record_checks._plainly_fine`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopdsl.engine import record_checks
from sopdsl.engine.record_checks import member_problems
from sopdsl.engine.records import GroupRecord, MemberRecord

LABELS = "tags, channels and the names of attributes and counters hold none, as ids"
LOG = "(a line break in one forged lines of the service's log)"
# Each record differs from a fine one in one field; the history's groups only when they are checked.
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"name": "名" * 257}, "name", "name is 257 characters long; names are at most 256"),
    ({"tags": ("vip", "a\x1bb")}, "tags.1", f"tags.1 holds a control character (\\u001b); {LABELS}"),
    ({"groups": ("g1", "g" * 257)}, "groups.1", "groups.1 is 257 characters long; ids are at most 256"),
    ({"id": "   "}, "id", "the id is empty"),
    ({"groups": ("g1", "  ")}, "groups.1", "groups.1 is empty"),
    ({"id": ""}, "id", "the id is empty"),
    ({"id": "u\x00"}, "id", "the id holds a NUL character (\\u0000)"),
    ({"name": "a\tb"}, "name", "name holds a control character (\\t); names hold none but a line break"),
    ({"owner": "a\nb"}, "owner", f"owner holds a control character (\\n); names of staff hold none {LOG}"),
    ({"channel": "web\x85"}, "channel", f"channel holds a control character (\\u0085); {LABELS}"),
    (
        {"attributes": {"bio": "x" * 4097}},
        "attributes.bio",
        "attributes.bio is 4097 characters long; a text attribute is at most 4096",
    ),
    (
        {"attributes": {"k" * 257: 1}},
        "attributes",
        "the name of one of attributes is 257 characters long; ids are at most 256",
    ),
    (
        {"counters": {"a\x7f": 1.0}},
        "counters",
        f"the name of one of counters holds a control character (\\u007f); {LABELS}",
    ),
    ({"referrer": "m\ud800"}, "referrer", "referrer holds a lone surrogate (half of a character)"),
    ({"referrer": " "}, "referrer", "referrer is empty"),
]
FINE = MemberRecord(
    id="u1",
    name="阿花",
    nickname="花",
    tags=("vip",),
    attributes={"city": "杭州", "age": 30, "bio": "x" * 4096},
    counters={"orders": 2.0},
    groups=("g1", "g2"),
    referrer="m0",
    channel="poster",
    owner="小美",
    group_joined_at={"g1": 1},
    group_last_message_at={"g1": 2},
)


@pytest.mark.parametrize(("change", "field", "problem"), REFUSED)
def test_a_record_over_a_limit_is_refused_with_its_words(
    change: dict[str, Any], field: str, problem: str
) -> None:
    record = dataclasses.replace(FINE, **change)
    assert list(member_problems(record)) == [(field, problem)]
    assert list(member_problems(record, history=False)) == [(field, problem)]


def test_an_attribute_named_by_a_number_is_refused_in_words_not_an_exception() -> None:
    # A Python caller may pass one (a timeline's JSON and a fixture's model name them by text);
    # compiled, reading the items as the annotation types them raised TypeError.
    record = MemberRecord(id="u1", attributes={1: "x"})  # type: ignore[dict-item]
    problem = "the name of one of attributes should be text, got int"
    assert list(member_problems(record)) == [("attributes", problem)]


def test_the_history_groups_are_ids_only_where_checked() -> None:
    record = dataclasses.replace(FINE, group_joined_at={"g\n": 1})
    problem = f"a group of group_joined_at holds a control character (\\n); ids hold none {LOG}"
    assert list(member_problems(record)) == [("group_joined_at", problem)]
    assert list(member_problems(record, history=False)) == []


@pytest.mark.parametrize(
    "change",
    # An id after a space, a line break in a name, a tag of 256, an ideographic space (FINE: a text of 4,096).
    [
        {},
        {"id": " u1"},
        {"name": "a\nb"},
        {"tags": ("t" * 256,)},
        {"nickname": "\u3000"},
        {"tags": ("x" * 200,)},
    ],
)
def test_fine_records_are_passed(change: dict[str, Any]) -> None:
    record = dataclasses.replace(FINE, **change)
    assert list(member_problems(record)) == []
    assert list(member_problems(record, history=False)) == []
    assert list(member_problems(MemberRecord(id="u1"))) == []


def test_records_are_built_as_the_dataclass_builds_them() -> None:
    # The records' `__init__` is written out (mypyc compiles it): the fields', in order, defaulted alike.
    group = GroupRecord("g", "G", ("a",), "UTC", "o", "p")
    for full in (FINE, group):
        cls = type(full)
        names = [f.name for f in dataclasses.fields(cls)]
        values = [getattr(full, name) for name in names]
        assert cls(*values) == cls(**dict(zip(names, values, strict=True))) == full
        bare = cls("x")
        for f in dataclasses.fields(cls)[1:]:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            assert getattr(bare, f.name) == default
    assert MemberRecord("x").attributes is not MemberRecord("y").attributes  # a fresh dict each
    with pytest.raises(dataclasses.FrozenInstanceError):
        FINE.name = "x"  # type: ignore[misc]


# Texts from characters each check treats apart: controls (C0, DEL, C1), a line break, a NUL,
# spaces (ASCII and ideographic), a lone surrogate, and plain Latin and Chinese ones.
_CHARS = st.sampled_from(
    ["a", "名", " ", "\u3000", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\ud800", "\u200b"]
)
_TEXT = st.text(_CHARS, max_size=6) | st.integers(250, 260).map(lambda n: "x" * n)
_ID = _TEXT.filter(bool)


@settings(max_examples=400, deadline=None)
@given(
    id=_ID,
    name=_TEXT,
    nickname=_TEXT,
    tags=st.lists(_TEXT, max_size=2).map(tuple),
    groups=st.lists(_TEXT, max_size=2).map(tuple),
    referrer=st.none() | _TEXT,
    channel=st.none() | _TEXT,
    owner=st.none() | _TEXT,
    attributes=st.dictionaries(_TEXT, _TEXT | st.integers(4095, 4097).map(lambda n: "b" * n), max_size=2),
    history=st.booleans(),
)
def test_a_record_the_quick_check_passes_is_one_the_full_check_passes(
    id: str,
    name: str,
    nickname: str,
    tags: tuple[str, ...],
    groups: tuple[str, ...],
    referrer: str | None,
    channel: str | None,
    owner: str | None,
    attributes: dict[str, str],
    history: bool,
) -> None:
    # The quick check is a second reading of the limits: it may send a fine record to the full
    # check, never pass one the full check refuses.
    record = MemberRecord(
        id=id,
        name=name,
        nickname=nickname,
        tags=tags,
        groups=groups,
        referrer=referrer,
        channel=channel,
        owner=owner,
        attributes=attributes,
        counters=dict.fromkeys(attributes, 1.0),
    )
    if record_checks._plainly_fine(record, history):
        assert list(record_checks._member_problems(record, history)) == []
