"""A fixture's durations read as a playbook's do: `3 小时` works in a `.sop` file, and now in a
fixture too (it used to be refused: "'3 小时' is not a duration like 2 hours (minutes, hours or
days)"). One table of unit words (`sopdsl.lang.durations`) serves the checker and the dry run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_fixture_loading import HEADER, problems, timeline_problems

import sopdsl
from sopdsl import lang, vocabulary
from sopdsl.cli import main
from sopdsl.dryrun.fixture_times import parse_duration
from sopdsl.dryrun.fixtures import parse_fixture
from sopdsl.dryrun.simulate import Simulation, simulate
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.lang import durations
from sopdsl.plan import Plan, timeutil
from sopdsl.source import Source


def compile_text(text: str) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


def run(plan: Plan, fixture: str) -> Simulation:
    return simulate(plan, parse_fixture(Source("inline.yaml", textwrap.dedent(fixture))))


UNITS_LISTED = "units are minutes, hours, days, weeks, months, years (or 分钟, 小时, 天, 周, 月, 年)"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3 小时", 3 * 3600),
        ("3小时", 3 * 3600),  # no space, as a playbook may write it
        ("2 天", 2 * 86400),
        ("30 分钟", 30 * 60),
        ("1 周", 7 * 86400),
        ("2 hours", 2 * 3600),  # as before
        ("1 hour", 3600),
        ("30 minutes", 30 * 60),
        ("1 week", 7 * 86400),
        ("\u30003\u3000小时", 3 * 3600),  # full-width spaces, as a Chinese keyboard types them
    ],
)
def test_a_fixture_duration_reads_as_a_playbooks(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_every_unit_word_a_playbook_takes_for_a_delay_a_fixture_takes_to_the_same_length() -> None:
    for word, unit in durations.UNITS.items():
        if unit in (lang.Unit.MONTH, lang.Unit.YEAR):
            continue  # no one length: refused below, with why
        playbook = compile_text(
            f"""
            timezone "Asia/Shanghai"
            playbook p {{
                on member joins
                do {{ wait 2 {word} }}
            }}
            """
        )
        [wait] = [i for i in playbook.playbooks[0].code if i.op == "wait"]
        assert wait.duration is not None
        assert parse_duration(f"2 {word}") == timeutil.seconds(wait.duration), word


def test_the_unit_words_are_one_table() -> None:
    # The checker's vocabulary re-exports the dry run's: no second copy to drift apart.
    assert vocabulary.UNITS is durations.UNITS
    assert {"小时", "天", "分钟", "hours", "day"} <= set(durations.UNITS)


def test_reading_a_fixture_duration_loads_neither_the_checker_nor_the_syntax() -> None:
    code = (
        "import sys; import sopdsl.dryrun.fixture_times as t; t.parse_duration('3 小时'); "
        "bad = [m for m in sys.modules if m.startswith(('sopdsl.checker', 'sopdsl.syntax', 'lark'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("3 小日", "'3 小日': unknown unit '小日', did you mean '小时'?"),
        ("3 時間", "'3 時間': unknown unit '時間'"),
        ("2 hourz", "'2 hourz': unknown unit 'hourz', did you mean 'hours'?"),
        ("1.5 小时", "'1.5 小时': a duration needs a whole number, not 1.5"),
        ("0 天", "'0 天': a duration of 0 天 is no time at all"),
        ("三 小时", "'三 小时' is not a duration like 3 小时 or 2 hours"),
    ],
)
def test_a_bad_fixture_duration_says_what_is_wrong_and_lists_the_units(text: str, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{said} ({UNITS_LISTED})"


def test_a_month_is_refused_as_a_delay_saying_why() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("1 月")
    assert (
        str(caught.value)
        == "'1 月': a delay is counted in minutes, hours, days or weeks (分钟, 小时, 天, 周)"
    )


def test_a_bad_duration_in_a_yaml_fixture_is_located_at_its_value() -> None:
    found = problems(
        "start: 2026-03-01 09:00\nstaff_completes_tasks_after: 3 小日\nstaff:\n  - {id: 小周, completes_tasks_after: 2 天}\n"
        "  - {id: 小李, completes_tasks_after: 2 dya}\n"
    )
    assert found == [
        f"2:30: [SOP602] staff_completes_tasks_after: '3 小日': unknown unit '小日', did you mean '小时'? ({UNITS_LISTED})",
        f"5:37: [SOP602] staff.1.completes_tasks_after: '2 dya': unknown unit 'dya', did you mean 'days'? ({UNITS_LISTED})",
    ]


def test_a_jsonl_header_takes_a_chinese_duration_and_locates_a_bad_one(tmp_path: Path) -> None:
    good = HEADER.replace('"groups"', '"staff_completes_tasks_after": "3 小时", "groups"')
    assert timeline_problems(tmp_path, good) == []
    timeline = open_timeline(tmp_path / "t.jsonl", "t.jsonl", "Asia/Shanghai")
    try:
        assert timeline.header.task_delay == 3 * 3600
    finally:
        timeline.close()
    bad = HEADER.replace('"groups"', '"staff_completes_tasks_after": "3 小日", "groups"')
    assert timeline_problems(tmp_path, bad) == [
        f"1:1: [SOP602] staff_completes_tasks_after: '3 小日': unknown unit '小日', did you mean '小时'? ({UNITS_LISTED})"
    ]


TASKS = """
    timezone "Asia/Shanghai"
    playbook complaints "差评回访" {
        in private chats
        on member is reported
        do {
            assign "请私聊安抚 {{ member.name }}" to owner within 1 天 then {
                tag member "handled"
            }
        }
    }
"""

FIXTURE = """
    start: 2026-03-02 09:00
    end: 2026-03-05 00:00
    staff_completes_tasks_after: 3 小时
    staff:
      - {id: 小周, completes_tasks_after: 30分钟}
    members:
      - {id: c1, name: 张三, contact: true, owner: 小周}
      - {id: c2, name: 李四, contact: true, owner: 小李}
    events:
      - {at: 2026-03-02 10:00, kind: report, member: c1}
      - {at: 2026-03-02 10:00, kind: report, member: c2}
    expect:
      - {action: tag, tag: handled, member: c1, at: 2026-03-02 10:30}
      - {action: tag, tag: handled, member: c2, at: 2026-03-02 13:00}
"""


def test_a_fixture_with_chinese_durations_runs_with_those_delays() -> None:
    sim = run(compile_text(TASKS), FIXTURE)
    assert sim.passed, [o.message for o in sim.outcomes if not o.passed]


def test_sopdsl_test_runs_it_and_a_bad_one_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "p.sop").write_text(textwrap.dedent(TASKS), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(textwrap.dedent(FIXTURE), encoding="utf-8")
    runner = CliRunner()
    passed = runner.invoke(main, ["test", str(tmp_path / "p.yaml")])
    assert passed.exit_code == 0, passed.output
    assert "2 passed, 0 failed" in passed.output
    (tmp_path / "p.yaml").write_text(textwrap.dedent(FIXTURE).replace("3 小时", "3 小日"), encoding="utf-8")
    failed = runner.invoke(main, ["test", str(tmp_path / "p.yaml")])
    assert (failed.exit_code == 2 and failed.exception is None) or isinstance(failed.exception, SystemExit)
    assert (
        "p.yaml:4:30: error[SOP602]: staff_completes_tasks_after: '3 小日': unknown unit '小日'"
        in failed.output
    )
    assert UNITS_LISTED in failed.output and "Traceback" not in failed.output
