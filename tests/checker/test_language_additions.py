"""Three additions the scenario fixtures asked for, through every stage: coupon stock in conditions
(G1: `coupon X in stock`), playbook metadata (T3: `version`, `author`, `reviewed by`) and a member
changing their group nickname (C4: the `rename` event and `on member renames`).

Each is parsed into its node, checked (with the diagnostics an operator gets for a mistake),
formatted (canonical, stable, the same tree after), compiled and run by the engine.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import sopdsl
from sopdsl.checker import check_program, model
from sopdsl.cli import main
from sopdsl.dryrun.fixtures import parse_fixture
from sopdsl.dryrun.simulate import Simulation, simulate
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import BadEventError, Event
from sopdsl.errors import FixtureError
from sopdsl.live.intake import EventError, intake
from sopdsl.plan import Plan, loads
from sopdsl.source import Source
from sopdsl.syntax import nodes
from sopdsl.syntax.formatter import format_source
from sopdsl.syntax.parser import parse

HEAD = 'timezone "Asia/Shanghai"\n'


def program_text(text: str) -> str:
    return HEAD + textwrap.dedent(text)


def diagnostics(text: str) -> list[tuple[str, str, str]]:
    """(severity, code, message) of every diagnostic `check` reports for a program."""
    result = check_program(sopdsl.load_text(program_text(text), "case.sop"))
    return [(d.severity.value, d.code, d.message) for d in result.diagnostics]


def checked(text: str) -> model.Program:
    return sopdsl.check(sopdsl.load_text(program_text(text), "case.sop"))


def compiled(text: str) -> Plan:
    return sopdsl.compile_program(checked(text))


def run(plan: Plan, fixture: str) -> Simulation:
    return simulate(plan, parse_fixture(Source("case.yaml", textwrap.dedent(fixture))))


def playbook_node(text: str) -> nodes.PlaybookDecl:
    file = parse(Source("case.sop", program_text(text)))
    found = [d for d in file.declarations if isinstance(d, nodes.PlaybookDecl)]
    assert len(found) == 1
    return found[0]


def shape(value: object) -> object:
    """A syntax tree without spans, for comparing trees."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            {f.name: shape(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "span"},
        )
    if isinstance(value, tuple):
        return tuple(shape(item) for item in value)
    return value


def formatted(text: str) -> str:
    """Format a program, holding it to the formatter's properties: same tree, stable."""
    source = Source("case.sop", text)
    once = format_source(source)
    assert format_source(Source("case.sop", once)) == once
    assert shape(parse(Source("case.sop", once)).declarations) == shape(parse(source).declarations)
    return once


# ---- G1: coupon stock in conditions ----------------------------------------------------------------

STOCKED = """
coupon scarf "免费围巾券" worth 99 stock 2
template got = "{{ member.name }}，围巾券已到账：{{ coupon.title }}"
template gone = "{{ member.name }}，围巾已经领完了"
playbook reward {
    on member joins
    do {
        if coupon scarf in stock {
            grant scarf to member
            send got to member
        } else {
            send gone to member
        }
    }
}
"""

THREE_JOIN = """
start: 2026-03-01 09:00
end: 2026-03-02 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-01 10:00, kind: join, member: a, group: g1, data: {name: 阿一}}
  - {at: 2026-03-01 10:01, kind: join, member: b, group: g1, data: {name: 阿二}}
  - {at: 2026-03-01 10:02, kind: join, member: c, group: g1, data: {name: 阿三}}
"""


def test_stock_tests_parse_into_their_node() -> None:
    pb = playbook_node(
        "playbook p { on member joins when coupon scarf in stock or coupon 围巾 not in stock do: stop }"
    )
    when = next(i for i in pb.items if isinstance(i, nodes.WhenSetting))
    assert isinstance(when.cond, nodes.Or)
    first, second = when.cond.operands
    assert isinstance(first, nodes.InStock) and first.coupon.text == "scarf" and not first.negated
    assert isinstance(second, nodes.InStock) and second.coupon.text == "围巾" and second.negated


def test_a_stock_test_checks_into_the_model() -> None:
    program = checked(STOCKED)
    (pb,) = program.playbooks
    (step,) = pb.steps
    assert isinstance(step, model.IfStep)
    assert step.branches[0].cond == model.StockCond(coupon="scarf", in_stock=True)
    negated = checked(STOCKED.replace("coupon scarf in stock", "coupon scarf not in stock"))
    assert negated.playbooks[0].steps[0].branches[0].cond == model.StockCond(coupon="scarf", in_stock=False)  # type: ignore[union-attr]


def test_the_member_after_the_last_coupon_is_told_it_is_gone() -> None:
    result = run(compiled(STOCKED), THREE_JOIN)
    sent = [(a.kind, a.member, a.detail.get("template"), a.status) for a in result.actions]
    assert sent == [
        ("grant", "a", None, "done"),
        ("send", "a", "got", "done"),
        ("grant", "b", None, "done"),
        ("send", "b", "got", "done"),
        ("send", "c", "gone", "done"),
    ]


def test_not_in_stock_holds_once_the_stock_is_used_up() -> None:
    text = STOCKED.replace("if coupon scarf in stock {", "if coupon scarf not in stock {")
    result = run(compiled(text), THREE_JOIN)
    assert [(a.member, a.detail.get("template")) for a in result.actions if a.kind == "send"] == [
        ("a", "gone"),
        ("b", "gone"),
        ("c", "gone"),
    ], "nothing is granted while the test says the stock is gone, so it never runs out"


def test_a_grant_the_policy_drops_is_not_counted_against_the_stock() -> None:
    # A coupon cap drops the first member's grant: the stock still has both coupons after it.
    text = STOCKED.replace(
        "playbook reward", "policy { at most 0 coupons per member per day else drop }\nplaybook reward"
    )
    result = run(compiled(text), THREE_JOIN)
    assert [a.status for a in result.actions if a.kind == "grant"] == ["dropped", "dropped", "dropped"]
    assert not [a for a in result.actions if a.detail.get("template") == "gone"]


def test_a_stock_test_in_a_guard_and_in_a_calendar_entry() -> None:
    text = """
    coupon scarf stock 1
    template hi = "你好"
    playbook first_only {
        on member joins
        when coupon scarf in stock
        do: grant scarf to member
    }
    playbook notice {
        at 2026-03-01 12:00 when coupon scarf not in stock: send hi to group
    }
    """
    result = run(compiled(text), THREE_JOIN)
    assert [(a.kind, a.member, a.group) for a in result.actions] == [
        ("grant", "a", "g1"),
        ("send", None, "g1"),
    ]


def test_an_unknown_coupon_in_a_stock_test_is_located_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "typo.sop"
    path.write_text(
        program_text(STOCKED.replace("if coupon scarf in", "if coupon scraf in")), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "error[SOP107]: unknown coupon 'scraf'" in result.output
    assert "if coupon scraf in stock {" in result.output
    assert "hint: did you mean 'scarf'?" in result.output
    assert "Traceback" not in result.output


def test_a_stock_test_on_a_coupon_without_stock_is_a_warning() -> None:
    found = diagnostics(STOCKED.replace(" stock 2", ""))
    assert found == [
        (
            "warning",
            "SOP408",
            "coupon 'scarf' has no stock, so it never runs out and this test is always true",
        )
    ]
    # And the engine agrees: every member gets a coupon.
    plan = compiled(STOCKED.replace(" stock 2", ""))
    assert [a.member for a in run(plan, THREE_JOIN).actions if a.kind == "grant"] == ["a", "b", "c"]


def test_stock_tests_format_canonically() -> None:
    messy = program_text(
        """
        coupon scarf stock 2
        playbook p {
          on member joins
          when   coupon  scarf   not in    stock and (coupon scarf in stock or true)
          do:stop
        }
        """
    )
    assert "    when coupon scarf not in stock and (coupon scarf in stock or true)\n" in formatted(messy)
    assert formatted(program_text(STOCKED)) == formatted(formatted(program_text(STOCKED)))


def test_why_names_a_false_stock_guard_and_how_many_are_left(tmp_path: Path) -> None:
    (tmp_path / "case.sop").write_text(
        program_text(
            """
            coupon scarf stock 1
            playbook first_only {
                on member joins
                when coupon scarf in stock
                do: grant scarf to member
            }
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "case.yaml").write_text(textwrap.dedent(THREE_JOIN), encoding="utf-8")
    result = CliRunner().invoke(main, ["why", "b", "--timeline", str(tmp_path / "case.yaml")])
    assert result.exit_code == 0, result.output
    assert "✗ coupon scarf in stock    (scarf: 0 left)" in result.output


# ---- T3: version, author, reviewed by --------------------------------------------------------------

VERSIONED = """
template hi = "你好"
playbook live "直播SOP" {
    version "1.2"
    author "小美"
    reviewed by "阿峰", "阿坤"
    active from 2027-01-10 00:00 until 2027-01-17 23:59
    at 2027-01-15 20:00: send hi to group
}
"""


def test_metadata_parses_into_settings() -> None:
    pb = playbook_node(VERSIONED)
    version, author, reviewed = pb.items[:3]
    assert isinstance(version, nodes.VersionSetting) and version.version.value == "1.2"
    assert isinstance(author, nodes.AuthorSetting) and author.author.value == "小美"
    assert isinstance(reviewed, nodes.ReviewSetting)
    assert [r.value for r in reviewed.reviewers] == ["阿峰", "阿坤"]


def test_metadata_reaches_the_model_and_the_compiled_plan() -> None:
    plan = compiled(VERSIONED)
    (pb,) = plan.playbooks
    assert (pb.version, pb.author, pb.reviewers) == ("1.2", "小美", ("阿峰", "阿坤"))
    dumped = json.loads(plan.dumps())
    saved = dumped["playbooks"][0]
    assert (saved["version"], saved["author"], saved["reviewers"]) == ("1.2", "小美", ["阿峰", "阿坤"])
    assert loads(plan.dumps()).playbooks[0].version == "1.2"
    # A new revision is a new plan: the content hash tells the two apart.
    assert compiled(VERSIONED.replace('"1.2"', '"1.3"')).content_hash != plan.content_hash


def test_sopdsl_compile_writes_the_version_into_the_plan(tmp_path: Path) -> None:
    (tmp_path / "live.sop").write_text(program_text(VERSIONED), encoding="utf-8")
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(main, ["compile", str(tmp_path / "live.sop"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["playbooks"][0]["version"] == "1.2"


def test_a_playbook_without_metadata_has_none() -> None:
    (pb,) = checked("playbook p { on member joins do: stop }").playbooks
    assert (pb.version, pb.author, pb.reviewers) == (None, None, ())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('version "1.2"', 'version ""'), ("error", "SOP117", "the version is empty")),
        (('version "1.2"', 'version "  "'), ("error", "SOP117", "the version is empty")),
        (
            ('version "1.2"', 'version """\n    1.2\n    beta\n    """'),
            ("error", "SOP117", "the version spans several lines"),
        ),
        (('author "小美"', 'author ""'), ("error", "SOP117", "the author is empty")),
        (('"阿峰", "阿坤"', '"阿峰", ""'), ("error", "SOP117", "a reviewer is empty")),
        (('"阿峰", "阿坤"', '"阿峰", "阿峰"'), ("error", "SOP117", "'阿峰' is named twice as a reviewer")),
        (
            ('"阿峰", "阿坤"', '"小美"'),
            ("warning", "SOP117", "this playbook is reviewed only by its author '小美'"),
        ),
        (
            ('version "1.2"', 'version "1.2"\n    version "1.3"'),
            ("error", "SOP114", "this playbook already has a 'version' setting"),
        ),
    ],
)
def test_metadata_mistakes(edit: tuple[str, str], expected: tuple[str, str, str]) -> None:
    assert diagnostics(VERSIONED.replace(*edit)) == [expected]


def test_a_review_by_the_author_and_someone_else_is_fine() -> None:
    assert diagnostics(VERSIONED.replace('"阿峰", "阿坤"', '"小美", "阿峰"')) == []


def test_metadata_formats_canonically() -> None:
    messy = program_text(
        """
        playbook p {
        version   "1.2"   author "小美"
          reviewed   by "阿峰","阿坤"
          on member joins do: stop
        }
        """
    )
    assert '    version "1.2"\n    author "小美"\n    reviewed by "阿峰", "阿坤"\n' in formatted(messy)


def test_words_of_the_metadata_stay_names_elsewhere() -> None:
    # Keywords get word boundaries: `versions` and `author_id` are names, not `version s`.
    program = checked(
        """
        attribute versions: text
        attribute author_id: text
        playbook p { on member joins when member.versions == "x" and member.author_id is set do: stop }
        """
    )
    assert set(program.attributes) == {"versions", "author_id"}


# ---- C4: a member changes their group nickname -----------------------------------------------------

NICKNAMES = """
template reminder = "{{ member.name }}，请把群名片改成“城市-昵称”"
template thanks = "{{ member.name }}，群名片改好啦：{{ event.nickname }}"
playbook remind {
    on 1 day after member.joined_at at 10:00
    when not member.nickname matches "^[^-]+-[^-]+$"
    do: send reminder to member
}
playbook thank {
    on member renames
    when member.nickname matches "^[^-]+-[^-]+$"
    do: send thanks to member
}
"""

RENAMES = """
start: 2026-03-02 09:00
end: 2026-03-05 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-02 10:00, kind: join, member: fixes, group: g1, data: {name: 小周, nickname: 小周}}
  - {at: 2026-03-02 10:05, kind: join, member: breaks, group: g1, data: {name: 阿明, nickname: 苏州-阿明}}
  - {at: 2026-03-02 21:30, kind: rename, member: fixes, group: g1, data: {nickname: 杭州-小周}}
  - {at: 2026-03-02 22:10, kind: rename, member: breaks, group: g1, data: {nickname: 阿明}}
"""


def test_the_rename_trigger_parses_checks_and_formats() -> None:
    pb = playbook_node("playbook p { on member renames do: stop }")
    on = next(i for i in pb.items if isinstance(i, nodes.OnSetting))
    assert isinstance(on.trigger, nodes.OnEvent) and on.trigger.pattern.kind is nodes.EventKind.RENAME
    (checked_pb,) = checked("playbook p { on member renames do: stop }").playbooks
    assert checked_pb.triggers[0].pattern == model.EventPattern(kind=model.EventKind.RENAME)  # type: ignore[union-attr]
    assert "    on member renames\n" in formatted(program_text("playbook p {on   member   renames do: stop}"))


def test_a_rename_changes_the_nickname_a_later_test_reads() -> None:
    result = run(compiled(NICKNAMES), RENAMES)
    assert [(a.member, a.detail["template"], a.detail["text"]) for a in result.actions] == [
        ("fixes", "thanks", "小周，群名片改好啦：杭州-小周"),
        ("breaks", "reminder", "阿明，请把群名片改成“城市-昵称”"),
    ]
    assert result.engine.members["fixes"].nickname == "杭州-小周"
    assert result.engine.members["breaks"].nickname == "阿明"


def test_a_flow_can_wait_for_a_rename() -> None:
    text = """
    template nudge = "请改群名片"
    template done = "谢谢！"
    playbook nudge {
        on member joins
        when not member.nickname matches "-"
        do {
            send nudge to member
            wait 1 day for member renames then { send done to member } else { send nudge to member }
        }
    }
    """
    result = run(compiled(text), RENAMES)
    assert [(a.member, a.detail["template"]) for a in result.actions] == [
        ("fixes", "nudge"),
        ("fixes", "done"),
    ]


def test_event_fields_of_a_rename_are_checked() -> None:
    text = NICKNAMES.replace("{{ event.nickname }}", "{{ event.nick }}")
    assert [code for _, code, _ in diagnostics(text)] == ["SOP202"]


def test_a_rename_without_a_nickname_is_refused_at_every_door() -> None:
    plan = compiled(NICKNAMES)
    engine = Engine(plan, start=0)
    with pytest.raises(BadEventError, match=r"data\.nickname"):
        engine.feed(Event("rename", 10, "m1", "g1", {"nick": "杭州-小周"}))
    with pytest.raises(EventError, match=r"needs data\.nickname") as caught:
        intake({"kind": "rename", "member": "m1", "data": {}}, plan.declarations, 0)
    assert caught.value.field == "data.nickname"
    with pytest.raises(EventError, match="nickname is text, got 3"):
        intake({"kind": "rename", "member": "m1", "data": {"nickname": 3}}, plan.declarations, 0)
    with pytest.raises(FixtureError) as fixture_error:
        parse_fixture(Source("case.yaml", RENAMES.replace("{nickname: 阿明}", "{name: 阿明}")))
    (problem,) = fixture_error.value.diagnostics
    assert problem.message.startswith("events.3.data.nickname: a rename event needs data.nickname")
    assert problem.span.line == 9


def test_a_cleared_nickname_is_a_rename_to_nothing() -> None:
    plan = compiled(NICKNAMES)
    engine = Engine(plan, start=0)
    engine.feed(Event("join", 10, "m1", "g1", {"name": "小周", "nickname": "杭州-小周"}))
    engine.feed(Event("rename", 20, "m1", "g1", {"nickname": ""}))
    assert engine.members["m1"].nickname == ""


def test_a_jsonl_timeline_takes_renames(tmp_path: Path) -> None:
    (tmp_path / "case.sop").write_text(program_text(NICKNAMES), encoding="utf-8")
    lines: list[dict[str, object]] = [
        {
            "sopdsl": "timeline",
            "start": "2026-03-02 09:00",
            "end": "2026-03-04 00:00",
            "groups": [{"id": "g1"}],
        },
        {
            "at": "2026-03-02 10:00",
            "kind": "join",
            "member": "m1",
            "group": "g1",
            "data": {"nickname": "小周"},
        },
        {
            "at": "2026-03-02 21:00",
            "kind": "rename",
            "member": "m1",
            "group": "g1",
            "data": {"nickname": "杭州-小周"},
        },
    ]
    timeline = tmp_path / "big.jsonl"
    timeline.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    result = CliRunner().invoke(main, ["simulate", str(tmp_path / "case.sop"), "--timeline", str(timeline)])
    assert result.exit_code == 0, result.output
    assert "thanks" in result.output and "reminder" not in result.output
    lines[2]["data"] = {}
    timeline.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    result = CliRunner().invoke(main, ["simulate", str(tmp_path / "case.sop"), "--timeline", str(timeline)])
    assert result.exit_code != 0 and "data.nickname" in result.output and "Traceback" not in result.output
