"""A fixture's members and event data, as an operator first writes them (`fixture_events`): a
birthday written `3月8日` armed no greeting, an attribute spelt `brithday` or an order's `amout`
was never read, and the test passed all the same. A value of the wrong type for its declared
attribute now stops the fixture, as the admin API refuses such a member; a field no playbook
reads is warned of at its line, with the name it was probably meant to be."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main

BIRTHDAY = """\
timezone "Asia/Shanghai"
attribute birthday: date "生日"
template hi = "{{ member.name }}，生日快乐"
template thanks = "{{ member.name }}，谢谢你的大单"
playbook birthday {
    on member.birthday at 09:00
    do: send hi to member
}
playbook big_order {
    in private chats
    on member orders
    when event.amount >= 100
    do: send thanks to member
}
"""

FIXTURE = """\
start: 2026-03-02 09:00
end: 2026-03-12 00:00
groups:
  - {id: vip}
members:
  - {id: meimei, name: 美美, groups: [vip], attributes: {birthday: 1990-03-05}}
  - {id: xiaolin, name: 小林, groups: [vip], contact: true, attributes: {birthday: 1991-03-08}}
events:
  - {at: 2026-03-02 10:00, kind: order, member: xiaolin, data: {amount: 199}}
expect:
  - {action: send, template: hi, member: meimei, at: 2026-03-05 09:00}
  - {action: send, template: hi, member: xiaolin, never: true}
  - {action: send, template: thanks, member: xiaolin, never: true}
"""


def run(tmp_path: Path, fixture: str) -> tuple[int, str]:
    (tmp_path / "b.sop").write_text(BIRTHDAY, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(fixture, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(tmp_path / "b.yaml")])
    return result.exit_code, result.output


def test_the_fixture_as_meant_fails_its_wrong_nevers(tmp_path: Path) -> None:
    code, output = run(tmp_path, FIXTURE)
    assert code == 1, output
    assert "expect[1]: expected never send template=hi to member xiaolin" in output
    assert "expect[2]: expected never send template=thanks to member xiaolin" in output


def test_a_birthday_that_is_not_a_date_stops_the_fixture_at_its_value(tmp_path: Path) -> None:
    code, output = run(tmp_path, FIXTURE.replace("birthday: 1991-03-08", "birthday: 3月8日"))
    assert code == 2, output
    assert (
        'b.yaml:7:72: error[SOP602]: members.1.attributes.birthday: "3月8日" is not a date, '
        "which the playbooks declare it to be (like 1990-03-10)"
    ) in output


@pytest.mark.parametrize(
    ("mistake", "said", "hint"),
    [
        (
            ("birthday: 1991-03-08", "brithday: 1991-03-08"),
            "b.yaml:7:72: warning[SOP602]: members.1.attributes.brithday: the playbooks declare no "
            "attribute 'brithday', so nothing reads this value",
            "did you mean 'birthday'?",
        ),
        (
            ("{amount: 199}", "{amout: 199}"),
            "b.yaml:9:65: warning[SOP602]: events.0.data.amout: an order event takes no data field "
            "'amout', so nothing reads it (it takes: amount, name, order_id)",
            "did you mean 'amount'?",
        ),
    ],
)
def test_a_value_no_playbook_reads_is_warned_of_where_it_is_written(
    tmp_path: Path, mistake: tuple[str, str], said: str, hint: str
) -> None:
    code, output = run(tmp_path, FIXTURE.replace(*mistake))
    assert code == 1, output  # the run goes on: the `never` about the value passes, and says why
    assert said in output
    assert hint in output


def test_simulate_warns_of_it_on_standard_error(tmp_path: Path) -> None:
    (tmp_path / "b.sop").write_text(BIRTHDAY, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(FIXTURE.replace("{amount: 199}", "{amout: 199}"), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "b.sop"), "--timeline", str(tmp_path / "b.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "events.0.data.amout: an order event takes no data field 'amout'" in result.stderr
    assert "amout" not in result.stdout


DRIP = """\
timezone "Asia/Shanghai"
template d0 = "{{ member.name }}，欢迎！"
template d1 = "{{ member.name }}，新人专享价还有 2 天"
playbook drip {
    on member joins
    do {
        send d0 to member
        wait 2 days for member orders else {
            send d1 to member
        }
    }
}
"""

DRIP_FIXTURE = """\
start: 2026-03-02 09:00
end: 2026-03-06 00:00
groups:
  - {id: riders}
members:
  - {id: m1, groups: [riders]}
events:
  - {at: 2026-03-02 10:00, kind: join, member: afeng, group: riders, data: {name: 阿峰}}
  - {at: 2026-03-03 12:00, kind: order, member: afneg, data: {amount: 10}}
  - {at: 2026-03-03 13:00, kind: message, member: m3, group: riders}
expect:
  - {action: send, template: d1, member: afeng}
"""


def test_an_event_of_a_near_miss_of_a_members_id_is_warned_of(tmp_path: Path) -> None:
    # The order was afeng's, written `afneg`: it made a new customer, afeng was nudged, and the
    # expectation, written from what the playbook did, passed without a word.
    (tmp_path / "d.sop").write_text(DRIP, encoding="utf-8")
    (tmp_path / "d.yaml").write_text(DRIP_FIXTURE, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(tmp_path / "d.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "d.yaml:9:41: warning[SOP602]: events.1.member: 'afneg' is no fixture member and has not "
        "joined, so this event is taken as a new member's"
    ) in result.output
    assert "did you mean 'afeng'?" in result.output
    assert "'m3'" not in result.output  # the next of m1, m2: a member of its own, not a slip
