"""The dry run's JSONL line of an action (`action_line`) is byte for byte the line of its JSON form
(`json_line(action.to_json(tz))`), which it is written without building: whatever the detail's keys
and values, with a reason or a moved time or not."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopdsl.engine.actions import Action, action_line, json_line

_ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]
_OWN = ["at", "kind", "status", "playbook", "target", "member", "group", "key", "reason", "planned"]

_texts = st.text(max_size=12)  # any text: quotes, backslashes, controls, Chinese, emoji
_keys = st.one_of(
    st.sampled_from(["text", "template", "channel", "coupon", "worth", "tags", "because", "a"]), _texts
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    _texts,
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=6,
)
_times = st.integers(1_700_000_000, 1_900_000_000)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    time = draw(_times)
    detail_keys = draw(st.lists(st.one_of(_keys, st.sampled_from(_OWN)), max_size=4, unique=True))
    return Action(
        time,
        draw(st.sampled_from(["send", "tag", "kick", "grant", "custom"])),
        draw(st.sampled_from(["welcome", "入群欢迎", 'say "hi"'])),
        draw(st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)),
        draw(st.one_of(st.none(), _texts)),
        draw(st.one_of(st.none(), _texts)),
        draw(st.sampled_from(["member", "group"])),
        {key: draw(_values) for key in detail_keys},
        draw(st.sampled_from(["done", "dropped", "blocked", "failed", "unassigned"])),
        draw(st.one_of(st.none(), st.just(""), _texts)),
        "x.sop:3",
        "joins",
        draw(st.one_of(st.none(), st.just(time), _times)),
    )


@settings(max_examples=400, deadline=None)
@given(actions(), st.sampled_from(_ZONES))
def test_an_action_s_line_is_the_line_of_its_json_form(action: Action, tz: ZoneInfo) -> None:
    assert action_line(action, tz) == json_line(action.to_json(tz))


def test_the_reference_actions_lines_are_their_json_forms_and_the_keys_sorted() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    at = int(dt.datetime(2026, 3, 2, 0, 44, 48, tzinfo=tz).timestamp())
    sent = Action(at, "send", "welcome", "8d95bc8feb28d3322db938a9", "u1", "g1", "member")
    sent.detail = {"channel": None, "template": "welcome", "text": "何勇娜，欢迎加入！🎉\n群规：不发广告"}
    granted = Action(at, "grant", "welcome", "5a8e3e70d75ae55173927f25", "u1", "g1", "member")
    granted.detail = {"coupon": "new50", "worth": 50.0}
    moved = Action(at, "kick", "prune", "ff804d39e14ef320dc2b83d4", "u1", "g1", "member", {"because": "潜水"})
    moved.planned, moved.reason = at - 3600, "quiet hours"
    for action in (sent, granted, moved):
        line = action_line(action, tz)
        assert line == json_line(action.to_json(tz)) and line.endswith(b"\n")
        keys = list(json.loads(line))
        assert keys == sorted(keys)
    assert json.loads(action_line(moved, tz))["planned"] == "2026-03-01T23:44:48+08:00"
    assert json.loads(action_line(sent, tz))["text"].startswith("何勇娜")


def test_a_value_msgspec_cannot_encode_is_written_as_the_standard_library_writes_it() -> None:
    tz = ZoneInfo("UTC")

    class Odd:
        def __str__(self) -> str:
            return "odd"

    detail: dict[str, Any] = {"value": Odd(), "when": dt.date(2026, 3, 1)}
    action = Action(1_772_326_800, "custom", "p", "k" * 24, "u1", None, "member", detail)
    assert action_line(action, tz) == json_line(action.to_json(tz))
    assert json.loads(action_line(action, tz))["value"] == "odd"


@pytest.mark.source  # replaces a module function and a constant, which compiled code does not look up
def test_past_the_shapes_kept_a_line_is_still_its_json_form_and_no_shape_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bot naming its custom actions' arguments every way it likes cannot grow the table of
    # shapes, nor make a struct type for each action: the dict's way takes over.
    from sopdsl.engine import actions

    monkeypatch.setattr(actions, "_MAX_SHAPES", len(actions._SHAPES))
    made: list[tuple[Any, ...]] = []
    monkeypatch.setattr(actions, "_shape", lambda *keys: made.append(keys))
    kept = dict(actions._SHAPES)
    tz = ZoneInfo("UTC")
    for i in range(5):
        action = Action(1_772_326_800, "custom", "p", "k" * 24, "u1", None, "member", {f"arg{i}": i})
        assert action_line(action, tz) == json_line(action.to_json(tz))
    assert actions._SHAPES == kept and made == []
