"""Names in expectations: each kind of name resolves against the plan and the fixture, an unknown
one is reported at its line with a `did you mean`, and a `never` over it stops the fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from sopdsl.dryrun.testing import run_tests

PLAYBOOK = """\
timezone "Asia/Shanghai"
coupon new50 "新人券" worth 50
action notify_crm "通知 CRM" { level: text }
template welcome_rules "群规" = "欢迎{{ member.name }}"
template gift "礼物" = "送你一张券"

playbook welcome "入群欢迎" {
    on member joins
    do {
        send welcome_rules to member
        tag member "newbie"
        split {
            poster 40% {
                send gift to member
            }
            plain 60% {
                grant new50 to member
            }
        }
        call notify_crm(level = "high")
    }
}
"""

HEAD = """\
start: 2026-03-02 09:00
end: 2026-03-03 00:00
groups:
  - {id: riders1, tags: [normal]}
members:
  - {id: lina, groups: [riders1], tags: [core]}
events:
  - {at: 2026-03-02 10:00, kind: join, member: zhangwei, group: riders1}
expect:
"""


def run(tmp_path: Path, *expectations: str, playbook: str = PLAYBOOK) -> tuple[int, str]:
    (tmp_path / "welcome.sop").write_text(playbook, encoding="utf-8")
    fixture = tmp_path / "welcome.yaml"
    fixture.write_text(HEAD + "".join(f"  - {e}\n" for e in expectations), encoding="utf-8")
    report = run_tests([fixture])
    return report.exit_code, "\n".join(report.lines())


@pytest.mark.parametrize(
    ("expectation", "field", "hint"),
    [
        ("{action: send, template: welcom_rules, never: true}", "template", "welcome_rules"),
        ("{action: send, member: zhangwie, never: true}", "member", "zhangwei"),
        ("{action: send, group: riders2, never: true}", "group", "riders1"),
        ("{action: tag, tag: newbe, never: true}", "tag", "newbie"),
        ("{action: grant, coupon: new05, never: true}", "coupon", "new50"),
        ("{action: call, call: notify_crn, never: true}", "call", "notify_crm"),
        ("{action: send, arm: postr, never: true}", "arm", "poster"),
        ("{action: send, playbook: welcom, never: true}", "playbook", "welcome"),
        ("{action: send, member: nobody, count: 0}", "member", "known: lina, zhangwei"),
    ],
)
def test_a_never_over_an_unknown_name_is_an_error(
    tmp_path: Path, expectation: str, field: str, hint: str
) -> None:
    code, text = run(tmp_path, expectation)
    assert code == 2
    assert "welcome.yaml:10:" in text
    assert f"error[SOP604]: expect.0.{field}:" in text
    assert "holds whatever happens" in text
    assert hint in text


def test_a_never_over_an_action_no_step_makes_fails(tmp_path: Path) -> None:
    """Not a misspelling: the playbook may have lost its only `kick`, and the fixture must fail."""
    code, text = run(tmp_path, "{action: kick, member: zhangwei, never: true}")
    assert code == 1
    assert "error[SOP604]: expect.0.action: no step of the playbooks makes 'kick' actions" in text
    assert "known: call, grant, send, tag" in text
    assert "expect[0]: never kick to member zhangwei, but no step of the playbooks makes" in text


def test_json_gives_an_error_with_the_expectation_it_fails_and_a_warning_as_a_warning(tmp_path: Path) -> None:
    (tmp_path / "welcome.sop").write_text(PLAYBOOK, encoding="utf-8")
    fixture = tmp_path / "welcome.yaml"
    lines = ["{action: kick, member: zhangwei, never: true}", "{action: send, member: zhangwie}"]
    fixture.write_text(HEAD + "".join(f"  - {e}\n" for e in lines), encoding="utf-8")
    (entry,) = run_tests([fixture]).to_json()["fixtures"]
    never, misspelt = entry["expectations"]
    assert never["passed"] is False
    assert [e.split(": ", 1)[1].split(":")[0] for e in never["errors"]] == ["error[SOP604]"]
    assert misspelt["errors"] == []
    assert len(entry["warnings"]) == 1 and "warning[SOP604]: expect.1.member" in entry["warnings"][0]


def test_an_unknown_name_in_a_positive_expectation_warns_and_fails(tmp_path: Path) -> None:
    code, text = run(tmp_path, "{action: send, template: welcome_rules, member: zhangwie}")
    assert code == 1
    assert "warning[SOP604]: expect.0.member: member 'zhangwie'" in text
    assert "did you mean 'zhangwei'?" in text


def test_state_checks_resolve_tags_groups_attributes_and_counters(tmp_path: Path) -> None:
    code, text = run(
        tmp_path,
        "{member: zhangwei, at: 2026-03-02 11:00, tagged: [newbie], not_tagged: [coer]}",
        "{member: lina, at: 2026-03-02 11:00, in_group: ridres1, counters: {mesages: 0}}",
    )
    assert code == 1
    assert "expect.0.not_tagged.0: tag 'coer'" in text
    assert "did you mean 'core'?" in text
    assert "expect.1.in_group: group 'ridres1'" in text
    assert "expect.1.counters.mesages: counter 'mesages'" in text
    assert "did you mean 'messages'?" in text
    assert "newbie" not in text.split("expect.0.not_tagged")[0]  # a tag a step writes is known


def test_every_name_the_plan_and_fixture_define_passes(tmp_path: Path) -> None:
    code, text = run(
        tmp_path,
        "{action: send, template: welcome_rules, member: zhangwei, group: riders1, playbook: welcome}",
        "{action: tag, tag: newbie, member: zhangwei}",
        "{action: call, call: notify_crm, member: zhangwei}",
        "{action: send, member: lina, never: true}",
    )
    assert "SOP604" not in text, text
    assert code == 0, text


def test_a_name_only_a_reloaded_version_defines_is_known(tmp_path: Path) -> None:
    v2 = PLAYBOOK.replace('template gift "', 'template gift2 "').replace("send gift to", "send gift2 to")
    (tmp_path / "welcome.v2.sop").write_text(v2, encoding="utf-8")
    window = "within: [2026-03-02 09:00, 2026-03-02 09:30]"
    _, text = run(tmp_path, f"{{action: send, template: gift2, never: true, {window}}}")
    assert "SOP604" in text  # without the reload, gift2 is unknown
    fixture = (tmp_path / "welcome.yaml").read_text(encoding="utf-8")
    fixture = fixture.replace("expect:\n", "  - {at: 2026-03-02 12:00, reload: welcome.v2.sop}\nexpect:\n")
    (tmp_path / "welcome.yaml").write_text(fixture, encoding="utf-8")
    report = run_tests([tmp_path / "welcome.yaml"])
    assert "SOP604" not in "\n".join(report.lines())
    assert report.exit_code == 0


def test_the_corpus_fixtures_name_only_what_exists() -> None:
    root = Path(__file__).resolve().parent.parent.parent / "playbooks"
    report = run_tests(sorted(root.glob("*.yaml")))
    assert "SOP604" not in "\n".join(report.lines())
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("expectation", "said"),
    [
        (
            "{action: grant, template: gift, never: true}",
            "expect.0.template: a grant action carries no template, so no action matches this, and this "
            "`never` holds whatever happens",
        ),
        (
            "{action: send, coupon: new50, never: true}",
            "expect.0.coupon: a send action carries no coupon, so no action matches this, and this "
            "`never` holds whatever happens",
        ),
        (
            "{action: grant, arm: poster, count: 0}",
            "expect.0.arm: a grant action carries no arm",
        ),
    ],
)
def test_a_field_the_action_never_carries_stops_a_never(tmp_path: Path, expectation: str, said: str) -> None:
    # The grant of the `plain` arm carries no template and no arm: these held whatever the
    # playbook did, as a misspelt name under `never` did.
    code, text = run(tmp_path, expectation)
    assert code == 2, text
    assert "welcome.yaml:10:" in text
    assert f"error[SOP604]: {said}" in text
    assert "goes with" in text


def test_a_field_the_action_never_carries_elsewhere_is_a_warning(tmp_path: Path) -> None:
    code, text = run(tmp_path, "{action: grant, template: gift}")
    assert code == 1, text
    assert "warning[SOP604]: expect.0.template: a grant action carries no template" in text


_DETAIL_KEYS = {"tag": "tags", "call": "action"}  # an expectation's field -> the detail key it reads


def test_the_carried_fields_table_allows_every_field_the_corpus_actions_carry() -> None:
    # The table must never refuse a field some action really carries: every detail key of every
    # action of the corpus's runs is allowed for its kind.
    from sopdsl.build import compile_files
    from sopdsl.dryrun.fixture_names import CARRIED
    from sopdsl.dryrun.fixtures import load_fixture
    from sopdsl.dryrun.simulate import simulate

    playbooks = Path(__file__).resolve().parent.parent.parent / "playbooks"
    seen: dict[str, set[str]] = {}
    for path in sorted(playbooks.glob("*.yaml")):
        sop = playbooks / f"{path.name.split('.')[0]}.sop"
        fixture, _ = load_fixture(path, path.name)
        if fixture.playbook is not None or any(e.is_reload for e in fixture.events):
            continue
        plan = compile_files([sop]).plan
        assert plan is not None, sop
        for action in simulate(plan, fixture).actions:
            seen.setdefault(action.kind, set()).update(action.detail)
    assert {"send", "grant", "tag", "task", "escalate", "call", "invite", "draw"} <= set(seen)
    for field_name, kinds in CARRIED.items():
        key = _DETAIL_KEYS.get(field_name, field_name)
        carrying = {kind for kind, keys in seen.items() if key in keys}
        assert carrying <= kinds, (field_name, carrying - kinds)
