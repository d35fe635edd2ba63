"""`sopdsl report` as a new ops lead meets it: their own playbooks with goals and a split, the
mistakes they make, and what the page then says (values checked by hand in each test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from test_html import CHROMIUM, _browser_or_skip

from sopdsl.cli import main
from sopdsl.figures.html import render_html

AB = """\
timezone "Asia/Shanghai"
group 北京一群 { tagged "fans" }
template poster_a "海报A" = "年货节A版"
playbook poster_test "海报测试" {
    in groups tagged "fans"
    goal "下单" = member orders within 3 days
    at 2027-01-10 20:00 for each member: split {
        a SHARE_A%: send poster_a to member
        control SHARE_C%
    }
}
"""

TIMELINE = """\
start: 2027-01-09 09:00
end: 2027-01-14 00:00
seed: 0
groups:
  - {id: 北京一群, name: 北京粉丝一群, tags: [fans]}
members: MEMBERS
events:
  - {at: 2027-01-11 21:00, kind: order, member: m1, group: 北京一群, data: {amount: 100}}
expect: []
"""

THREE = "\n" + "".join(f"  - {{id: m{i}, name: 张{i}, groups: [北京一群]}}\n" for i in (1, 2, 3))


def run(tmp_path: Path, sop: str, timeline: str, fmt: str = "json") -> Any:
    """`sopdsl report` of the texts given; the JSON data, or the HTML page's text."""
    (tmp_path / "p.sop").write_text(sop, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(timeline, encoding="utf-8")
    args = ["report", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.yaml"), "--format", fmt]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else result.stdout


def ab(a: int, control: int) -> str:
    return AB.replace("SHARE_A", str(a)).replace("SHARE_C", str(control))


def test_arms_nobody_was_put_in_have_no_rate_and_no_comparison(tmp_path: Path) -> None:
    # No members at all: both arms are empty. A rate of 0% with a 0–0% interval and p = 1 would
    # read as measured; there is nothing to measure.
    data = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", "[]"))
    a, control = data["experiments"][0]["arms"]
    assert (a["members"], control["members"]) == (0, 0)
    assert (a["rate"], a["ci"], control["rate"], control["ci"]) == (None, None, None, None)
    assert (a["difference"], a["p"], a["test"], a["missing"]) == (None, None, None, "arm")
    page = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", "[]"), "html")
    assert 'data-arm="a" data-measure="missing">本组没有人，无法比较<' in page
    assert 'data-arm="a" data-measure="rate">—<' in page
    assert 'data-measure="p"' not in page and "0.0% – 0.0%" not in page


def test_an_arm_against_an_empty_control_is_not_compared(tmp_path: Path) -> None:
    # 99% to a, 1% held out: none of the three members lands in the control, so a's 1 of 3 cannot
    # be set against it (the old report showed +33.3% against the empty control, p = 1).
    data = run(tmp_path, ab(99, 1), TIMELINE.replace("MEMBERS", THREE))
    a, control = data["experiments"][0]["arms"]
    assert (a["members"], a["converted"], a["rate"]) == (3, 1, 0.3333)
    assert (control["members"], control["rate"]) == (0, None)
    assert (a["difference"], a["p"], a["missing"]) == (None, None, "baseline")
    page = run(tmp_path, ab(99, 1), TIMELINE.replace("MEMBERS", THREE), "html")
    assert 'data-arm="a" data-measure="missing">对照组没有人，无法比较<' in page
    assert 'data-arm="a" data-measure="rate">33.3%<' in page


MANY = 30  # groups: past `html.UNFOLDED_GROUPS`


def many_groups() -> tuple[str, str]:
    """A playbook and a timeline of `MANY` groups (Chinese names), one member each, who posts
    on the first day; the member of every third group orders ¥10 a group's index."""
    sop = 'timezone "Asia/Shanghai"\ntemplate hi "问候" = "你好"\n'
    sop += 'playbook hello "问候" {\n    on member posts\n    do: send hi to member\n}\n'
    groups = "".join(f"  - {{id: 城{i}, name: 第{i}城粉丝群, tags: [fans]}}\n" for i in range(MANY))
    members = "".join(f"  - {{id: m{i}, name: 成员{i}, groups: [城{i}]}}\n" for i in range(MANY))
    events = "".join(
        f"  - {{at: 2027-01-09 10:00, kind: message, member: m{i}, group: 城{i}}}\n" for i in range(MANY)
    )
    events += "".join(
        f"  - {{at: 2027-01-10 10:00, kind: order, member: m{i}, group: 城{i}, data: {{amount: {10 * i}}}}}\n"
        for i in range(0, MANY, 3)
    )
    timeline = (
        "start: 2027-01-09 09:00\nend: 2027-01-12 00:00\nseed: 0\n"
        f"groups:\n{groups}members:\n{members}events:\n{events}expect: []\n"
    )
    return sop, timeline


def test_a_report_of_many_groups_opens_on_an_overview_with_each_group_folded(tmp_path: Path) -> None:
    sop, timeline = many_groups()
    page = run(tmp_path, sop, timeline, "html")
    # The page begins with links to its parts and one row a group, linked to its folded section:
    # 30 sections of charts before the funnels made a page nobody could find a group in.
    assert page.index('id="contents"') < page.index('id="overview"') < page.index('class="group"')
    assert '<a href="#playbooks">剧本漏斗</a>' in page
    for i in range(MANY):
        assert f'<a href="#group-{i}">第{i}城粉丝群</a>' in page
    assert page.count('<details class="group"') == MANY
    assert '<div id="group-7">' in page
    # Each row's totals, by hand: one message and one send each; every third group orders ¥10 × i.
    assert 'data-total-group="城9" data-total="activity.messages">1<' in page
    assert 'data-total-group="城9" data-total="reach.deliveries">1<' in page
    assert 'data-total-group="城9" data-total="conversion.amount">90<' in page
    assert 'data-total-group="城10" data-total="conversion.orders">0<' in page


def test_a_report_of_a_few_groups_keeps_them_open(tmp_path: Path) -> None:
    page = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", THREE), "html")
    assert '<section class="group" data-group="北京一群" id="group-0">' in page
    assert "<details" not in page
    assert '<a href="#group-0">北京粉丝一群</a>' in page


def test_a_report_with_no_groups_says_so(tmp_path: Path) -> None:
    # A timeline that registers no group: the groups' part said nothing at all.
    sop = ab(50, 50).replace('group 北京一群 { tagged "fans" }\n', "")
    timeline = "start: 2027-01-09 09:00\nend: 2027-01-10 00:00\n"
    page = run(tmp_path, sop, timeline, "html")
    assert '<p class="meta" id="groups-empty">这段时间没有群的数据。</p>' in page


def test_following_a_groups_link_in_chromium_opens_its_folded_section(tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    sop, timeline = many_groups()
    (tmp_path / "report.html").write_text(run(tmp_path, sop, timeline, "html"), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((tmp_path / "report.html").as_uri())
            folded = page.eval_on_selector_all("details.group", "ds => ds.filter(d => d.open).length")
            page.click("text=第17城粉丝群")
            opened = page.eval_on_selector_all("details.group[open]", "ds => ds.map(d => d.dataset.group)")
            # A folded section's figure is named by its column's heading (`data-figure`).
            shown = page.locator('#group-17 table.days th[data-figure="activity.messages"]').is_visible()
            shown = shown and page.locator("#group-17 table.days td").first.is_visible()
        finally:
            browser.close()
    assert (folded, opened, shown) == (0, ["城17"], True)


def test_a_folded_report_shows_in_chromium_the_figures_of_the_json_report(tmp_path: Path) -> None:
    # Folded sections say where a figure comes from once a column, not once a cell (which made
    # 400 groups' page tens of megabytes): read back, each cell is still the JSON's figure.
    sync_playwright = _browser_or_skip()
    sop, timeline = many_groups()
    data = run(tmp_path, sop, timeline)
    (tmp_path / "report.html").write_text(run(tmp_path, sop, timeline, "html"), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto((tmp_path / "report.html").as_uri())
            shown = page.eval_on_selector_all(
                "details.group table.days",
                """tables => tables.flatMap(t => {
                    const group = t.closest("[data-group]").dataset.group;
                    const heads = [...t.rows[0].cells].map(c => c.dataset.figure);
                    return [...t.rows].slice(1).flatMap(r => [...r.cells].slice(1).map(
                        (c, i) => [group, r.cells[0].textContent, heads[i + 1], c.textContent]));
                })""",
            )
            charts = page.locator("details.group svg.chart").count()
            page.click("text=第17城粉丝群")
            font = page.evaluate("document.fonts.check('16px \"WenQuanYi Micro Hei\"', '第17城粉丝群')")
            family = page.evaluate("getComputedStyle(document.body).fontFamily")
            page.screenshot(path=str(tmp_path / "folded.png"))
        finally:
            browser.close()
    expected = {
        (group["id"], row["day"], f"{family}.{figure}"): value
        for group in data["groups"]
        for row in group["days"]
        for family, figures in row.items()
        if family != "day"
        for figure, value in figures.items()
    }
    assert len(shown) == len(expected) == MANY * 3 * 11
    assert {(g, d, f): float(text) for g, d, f, text in shown} == expected
    assert charts == MANY * 5
    assert "WenQuanYi Micro Hei" in family and font
    assert [url for url in asked if not url.startswith(("file:", "data:"))] == []


NO_GOAL = """\
timezone "Asia/Shanghai"
template poster_a "海报A" = "年货节A版"
template thanks "谢谢" = "谢谢惠顾"
playbook poster_nogoal "无目标测试" {
    in groups tagged "fans"
    at 2027-01-10 20:00 for each member: split {
        a 50%: send poster_a to member
        b 50%: send poster_a to member
    }
}
playbook dm "私聊感谢" {
    in private chats
    on member orders
    do: send thanks to member
}
"""

PRIVATE = TIMELINE.replace("MEMBERS", THREE).replace(
    "expect: []", "  - {at: 2027-01-12 10:00, kind: order, member: c1, data: {amount: 80}}\nexpect: []"
)


def test_a_split_without_a_goal_shows_no_conversion_and_says_what_to_write(tmp_path: Path) -> None:
    # Nothing can convert without a goal: every arm at 0% with p = 1 read as a measured tie.
    data = run(tmp_path, NO_GOAL, PRIVATE)
    (experiment,) = data["experiments"]
    assert experiment["goal"] is None
    a, b = experiment["arms"]
    assert a["members"] + b["members"] == 3
    assert (a["rate"], a["ci"], b["rate"], b["ci"]) == (None, None, None, None)
    assert (b["difference"], b["p"], b["missing"]) == (None, None, "goal")
    page = run(tmp_path, NO_GOAL, PRIVATE, "html")
    assert 'data-hint="goal">剧本没有声明目标' in page
    assert "goal &quot;下单&quot; = member orders within 7 days" in page
    assert 'data-arm="b" data-measure="missing">剧本没有目标，无从算转化<' in page
    assert 'data-arm="a" data-measure="converted">—<' in page
    # With no control arm, the first arm is the baseline, not a control.
    assert ">比较基准（没有对照组）<" in page


def test_an_experiment_is_headed_by_the_playbooks_title_and_its_time_in_chinese(tmp_path: Path) -> None:
    page = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", THREE), "html")
    assert "<h3>海报测试 · 目标「下单」 <span" in page
    assert "分组后 3 天 内" in page and "3 days" not in page


def test_what_happened_in_no_group_is_named_so(tmp_path: Path) -> None:
    # A private chat's order is counted under the group id "-", which the page showed as the
    # group's name too.
    data = run(tmp_path, NO_GOAL, PRIVATE)
    (private,) = [g for g in data["groups"] if g["id"] == "-"]
    assert private["name"] == "不在群里（私聊等）"
    assert private["totals"]["conversion"] == {"orders": 1, "amount": 80}


PILOTS = """\
timezone "Asia/Shanghai"
group 北京一群 { tagged "fans" }
group 广州三群 { tagged "fans" }
template welcome "欢迎" = "欢迎入群"
playbook welcome_bj "北京欢迎" {
    in groups 北京一群
    on member joins
    do: send welcome to member
}
playbook welcome_gz "广州欢迎" {
    in groups 广州三群
    on member joins
    do: send welcome to member
}
playbook later "明年的欢迎" {
    in groups 北京一群
    active from 2028-01-01 00:00 until 2028-02-01 00:00
    on member joins
    do: send welcome to member
}
"""


def test_a_pilot_that_cannot_be_compared_says_why(tmp_path: Path) -> None:
    # Before, each was left out of the page without a word: ops looked for a comparison in vain.
    one = TIMELINE.replace("MEMBERS", THREE)  # 北京一群 only
    data = run(tmp_path, PILOTS, one)
    assert [(p["playbook"], p.get("missing"), p["figures"]) for p in data["pilots"]] == [
        ("welcome_bj", "rest", []),  # no other group in the run
        ("welcome_gz", "pilot", []),  # 广州三群 is not in the run
        ("later", "rest", []),
    ]
    two = one.replace("groups:\n", "groups:\n  - {id: 上海二群, name: 上海粉丝二群, tags: [fans]}\n")
    data = run(tmp_path, PILOTS, two)
    assert [(p["playbook"], p.get("missing")) for p in data["pilots"]] == [
        ("welcome_bj", None),
        ("welcome_gz", "pilot"),
        ("later", "days"),  # active in 2028 only
    ]
    page = run(tmp_path, PILOTS, two, "html")
    assert '<h3>明年的欢迎：没有对比 <span class="meta">later</span></h3>' in page
    assert 'data-missing="days">它的生效时段（active from … until …）和这次数据的日期没有重叠' in page
    assert 'data-missing="pilot">它点名的群都不在这次的数据里' in page
    assert "<h3>北京欢迎：试点群 <bdi>北京一群</bdi> 对比其他群 <bdi>上海二群</bdi></h3>" in page


def test_a_p_value_is_never_shown_as_zero_and_comes_with_a_verdict(tmp_path: Path) -> None:
    data = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", THREE))
    (experiment,) = data["experiments"]
    arm = next(a for a in experiment["arms"] if not a["control"])
    cell = 'data-arm="a" data-measure="p">'
    # 300 of 1,000 against 100 of 1,000: p = 5e-29, which the JSON rounded to 0.0 (it keeps
    # significant digits now: test_experiments.py); a 0.0 given to the page still reads as below.
    arm.update(difference=0.2, test="z", p=0.0)
    assert cell + "< 0.0001（z 检验，显著）<" in render_html(data)
    assert 'data-arm="a" data-measure="difference">+20.0 个百分点<' in render_html(data)
    arm.update(difference=-0.0714, test="fisher", p=0.0312)
    assert cell + "0.0312（Fisher 精确检验，显著）<" in render_html(data)
    assert 'data-measure="difference">-7.1 个百分点<' in render_html(data)
    arm.update(p=1.0)
    assert cell + "1.0000（Fisher 精确检验，不显著）<" in render_html(data)
    assert "p 值小于 0.05 记为「显著」" in render_html(data)


def test_a_misspelt_group_in_the_timeline_is_warned_of_on_stderr(tmp_path: Path) -> None:
    # 北京1群 for 北京一群: the order was counted in a group of its own, with no word said.
    timeline = TIMELINE.replace("MEMBERS", THREE).replace(
        "member: m1, group: 北京一群", "member: m1, group: 北京1群"
    )
    (tmp_path / "p.sop").write_text(ab(50, 50), encoding="utf-8")
    (tmp_path / "t.yaml").write_text(timeline, encoding="utf-8")
    args = ["report", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.yaml"), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert (
        "t.yaml:12:53: warning[SOP602]: events.0.group: group '北京1群' is not in the fixture's groups"
        in (result.stderr)
    )
    assert "hint: did you mean '北京一群'?" in result.stderr
    assert "北京1群" in {g["id"] for g in json.loads(result.stdout)["groups"]}  # stdout stays the report


def test_a_misspelt_group_in_a_jsonl_timeline_is_warned_of_at_its_first_line(tmp_path: Path) -> None:
    header = {"sopdsl": "timeline", "version": 1, "timezone": "Asia/Shanghai", "start": 1799456400}
    header |= {"end": 1799542800, "groups": [{"id": "北京一群", "tags": ["fans"]}]}
    lines = [
        header,
        {"id": "m1", "groups": ["北京一群"]},
        {"at": 1799460000, "kind": "message", "member": "m1", "group": "北京一群"},
        {"at": 1799463600, "kind": "order", "member": "m1", "group": "北京1群", "data": {"amount": 5}},
    ]
    (tmp_path / "p.sop").write_text(ab(50, 50), encoding="utf-8")
    (tmp_path / "t.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8"
    )
    args = ["report", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.jsonl"), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "t.jsonl:4:1: warning[SOP602]: group '北京1群' is not in the header's groups" in result.stderr
    assert "hint: did you mean '北京一群'?" in result.stderr
    json.loads(result.stdout)


def test_the_calendar_says_in_words_what_goes_out_and_shows_the_control_arm(tmp_path: Path) -> None:
    # The content column showed the playbook's syntax ("send poster_a to member") and left the
    # control arm out, as if everyone got the poster.
    page = run(tmp_path, ab(60, 40), TIMELINE.replace("MEMBERS", THREE), "html")
    row = page[page.index('<table id="calendar">') :]
    said = "分组实验（a 60%：发送「海报A」给成员；对照组 control 40%：不做动作）"
    assert f'<td class="text">{said}</td></tr>' in row
    assert "send poster_a" not in row
    data = run(tmp_path, ab(60, 40), TIMELINE.replace("MEMBERS", THREE))
    (slot,) = data["calendar"]
    assert (slot["words"], slot["what"]) == (
        said,
        "send poster_a to member",
    )  # `what` kept for readers of the JSON
