"""The registry of kinds (sopdsl/kinds.py), walked: every kind has what each place needs.

A kind added to the registry and missed somewhere fails here, by name: the engine does not take
the event, a fixture cannot name it, the formatter cannot write its trigger, the live API refuses
it, an executor kind is missing, or a description shows nothing for the action.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

import sopdsl
from sopdsl.dryrun import fixture_models
from sopdsl.dryrun.simulate import describe
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import KINDS, Event, validate
from sopdsl.engine.state import MemberState
from sopdsl.kinds import ACTIONS, BUILTIN_COUNTERS, EVENTS, MEMBER_FIELDS, RECORDS, WIRE_EVENTS, subject_of
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.executors_config import KINDS as EXECUTOR_KINDS
from sopdsl.live.intake import intake
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source
from sopdsl.syntax.parser import parse

START = 1_772_330_400
PLAN = sopdsl.compile_program(
    sopdsl.check(
        sopdsl.load_text(
            'timezone "Asia/Shanghai"\nevent share_photo { url: text }\n'
            'template hi = "hi"\nplaybook p { on member joins do { send hi to member } }\n',
            "k.sop",
        )
    )
)


def _wire(name: str) -> dict[str, typing.Any]:
    spec = WIRE_EVENTS[name]
    body: dict[str, typing.Any] = {"kind": name, "time": START}
    if spec.needs_member:
        body["member"] = "m1"
    if spec.needs_name:
        body["name"] = "share_photo" if name == "custom" else "vip"
    if name == "custom":
        body["data"] = {"url": "https://example.com/p.jpg"}
    if name == "rename":
        body["data"] = {"nickname": "阿峰"}
    if name == "task_done":
        body["data"] = {"task": "k"}
    return body


@pytest.mark.parametrize("name", list(WIRE_EVENTS))
def test_every_event_kind_is_taken_by_the_engine_fixtures_timelines_and_the_live_api(name: str) -> None:
    fixture_models.FixtureEvent(at="2026-03-02 08:00", kind=name)  # a fixture can name it
    assert name in KINDS  # the engine and the timeline reader take it
    body = _wire(name)
    event = Event(
        name, START, member=body.get("member"), name=body.get("name"), data=dict(body.get("data", {}))
    )
    validate(event)
    engine = Engine(PLAN, start=START)
    engine.feed(event)  # handled: no error for any kind
    if name != "task_done":  # the engine raises that one itself; the API takes what a bot sends
        assert intake(body, PLAN.declarations, START)["kind"] == name


def test_fixtures_name_exactly_the_registrys_events_and_actions() -> None:
    assert set(fixture_models.EVENT_KINDS) == set(WIRE_EVENTS)
    assert set(fixture_models.ACTION_KINDS) == set(ACTIONS)
    for action in ACTIONS:
        assert fixture_models.Expectation(action=action).action == action
    for wrong in ("sned", "untagged", ""):
        with pytest.raises(ValidationError, match="Input should be 'send'"):
            fixture_models.Expectation(action=wrong)
        with pytest.raises(ValidationError, match="Input should be 'join'"):
            fixture_models.FixtureEvent(at="2026-03-02 08:00", kind=wrong)


@pytest.mark.parametrize("kind", [k for k, spec in EVENTS.items() if spec.phrase is not None])
def test_every_event_with_a_phrase_is_written_back_by_the_formatter(kind: object) -> None:
    phrase = EVENTS[kind].phrase  # type: ignore[index]
    text = f'timezone "Asia/Shanghai"\ntemplate hi = "hi"\nplaybook p {{\n    on {phrase}\n    do {{ send hi to member }}\n}}\n'
    parse(Source("k.sop", text))
    assert f"on {phrase}" in format_source(Source("k.sop", text))
    checked = sopdsl.check(sopdsl.load_text(text, "k.sop"))
    assert checked.playbooks[0].triggers[0].pattern.kind is kind  # type: ignore[union-attr]


def test_events_without_a_phrase_are_the_ones_spelled_otherwise() -> None:
    # `on member tagged "x"`, `on member untagged "x"`, `on share_photo`; task_done is the engine's.
    assert {spec.wire for spec in EVENTS.values() if spec.phrase is None} == {
        "tag",
        "untag",
        "custom",
        "task_done",
    }


def test_every_action_kind_has_an_executor_kind_and_a_description() -> None:
    assert tuple(ACTIONS) == ACTION_KINDS == EXECUTOR_KINDS
    for name, spec in ACTIONS.items():
        detail = {spec.subject: "x"} if spec.subject else {}
        action = Action(START, name, "p", "k", member="m1", detail=detail)
        line = describe(action, "Asia/Shanghai")
        assert f" {name} " in line and line.endswith("-> m1")
        if spec.subject:
            assert subject_of(name, detail) == "x" and " x " in line
    for name in RECORDS:
        assert name not in ACTIONS  # never executed


def test_the_engine_fills_each_actions_subject_as_the_registry_names_it() -> None:
    # Over the whole corpus: every action kind the engine decides carries its subject field.
    from sopdsl.build import compile_files
    from sopdsl.dryrun.fixtures import load_fixture
    from sopdsl.dryrun.simulate import simulate

    seen: dict[str, set[str]] = {}
    corpus = Path(__file__).parent.parent / "playbooks"
    for path in sorted(corpus.glob("*.yaml")):
        fixture = load_fixture(path, path.name)[0]
        if any(e.is_reload for e in fixture.events):
            continue  # a plan change needs its versions; the others cover the kinds
        plan = compile_files([corpus / (path.name.split(".")[0] + ".sop")]).plan
        assert plan is not None
        for action in simulate(plan, fixture).actions:
            seen.setdefault(action.kind, set()).update(action.detail)
    assert set(seen) >= set(ACTIONS) - {"dissolve"}, "a corpus fixture for every action kind"
    for name, keys in seen.items():
        spec = ACTIONS.get(name) or RECORDS[name]
        assert spec.subject is None or spec.subject in keys, name


def test_every_counter_and_field_reaches_templates() -> None:
    context = MemberState(id="m1", name="阿峰").as_context()
    for counter in BUILTIN_COUNTERS:
        assert context[counter] == 0
    for name in MEMBER_FIELDS:
        assert MemberState(id="m1").field_value(name) in (None, "m1", "", 0) or name in BUILTIN_COUNTERS


def test_every_trigger_kind_has_a_registry_entry_and_a_handler() -> None:
    from sopdsl import lang
    from sopdsl.engine.trigger_base import TriggerHandler
    from sopdsl.engine.triggers import HANDLERS, handler_for
    from sopdsl.kinds import TRIGGERS

    union = typing.get_args(typing.get_args(lang.Trigger)[0])  # Annotated[A | B | ..., Field(...)]
    names = {cls.model_fields["kind"].default: cls for cls in union}
    assert set(names) == set(TRIGGERS) == set(HANDLERS)
    assert list(HANDLERS) == list(TRIGGERS)  # the engine arms a member's triggers in registry order
    for name, cls in names.items():
        sample = cls.model_construct(**{"kind": name})
        assert handler_for(sample) is HANDLERS[name], name
    # A timed kind arms itself (for a member or a group) and has a timer to come due; a kind fired
    # by events alone arms nothing, so the base's do-nothing arming is right only for those.
    for name, spec in TRIGGERS.items():
        kind = type(HANDLERS[name])
        arms = (
            kind.arm_member is not TriggerHandler.arm_member or kind.arm_group is not TriggerHandler.arm_group
        )
        assert arms == spec.timed == hasattr(kind, "due"), name
