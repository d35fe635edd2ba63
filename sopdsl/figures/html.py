"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

It declares UTF-8 and a CJK font stack, so Chinese renders wherever one of the usual fonts is
installed. Every figure shown in a table cell carries where it comes from (`data-group`,
`data-day`, `data-figure`; a group's totals `data-total-group`, `data-total`), so a browser
test can read the page back against the JSON; in a folded group's section (past
`UNFOLDED_GROUPS`) the group is on the section, the figure on its column's heading and the day in
its row's first cell, and the charts are paths, which keeps a large community's page a few MB.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from sopdsl.figures.model import FAMILIES, FAMILY_LABELS, LABELS
from sopdsl.figures.svg import SERIES_STYLE, bar_chart, bar_paths, funnel, legend

FONTS = (
    '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", '
    '"Noto Sans CJK SC", "Source Han Sans SC", sans-serif'
)

# A difference with a p-value under this is called significant (显著) on the page.
SIGNIFICANT = 0.05

# Above this many groups each group's section is folded, under the overview of all of them.
UNFOLDED_GROUPS = 12

_STYLE = f"""
body {{ font-family: {FONTS}; margin: 24px; color: #222; max-width: 1300px; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }}
h2 {{ font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }}
h3 {{ font-size: 16px; margin: 20px 0 8px; }}
.meta {{ color: #666; font-size: 13px; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.chart-box {{ border: 1px solid #eee; border-radius: 6px; padding: 8px; }}
.chart-box h4 {{ margin: 0 0 4px; font-size: 14px; }}
.tick {{ font-size: 10px; fill: #666; }}
.funnel text {{ font-size: 12px; }}
.key {{ font-size: 12px; margin-right: 10px; }}
.key i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-top: 8px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
th {{ background: #f6f6f6; }}
td.text, th.text {{ text-align: left; }}
.notice {{ background: #fdecea; border: 1px solid #e57373; border-radius: 6px; padding: 10px 14px; }}
.burst {{ background: #fff4e5; border: 1px solid #f0b46a; border-radius: 6px; padding: 10px 14px; }}
details.group summary h3 {{ display: inline; }}
details.group summary {{ cursor: pointer; margin: 12px 0 4px; }}
details.group > div {{ scroll-margin-top: 48px; }}
table.days th:first-child {{ text-align: left; }}
.playbook {{ display: inline-block; vertical-align: top; margin: 0 24px 16px 0; }}
{SERIES_STYLE}"""


# The charts of a group: each family, counts apart from the amount of money (another scale).
_CHARTS = [
    *(
        (FAMILY_LABELS[family], family, figures)
        for family, figures in FAMILIES.items()
        if family != "conversion"
    ),
    ("转化", "conversion", ("orders", "buyers")),
    ("转化·金额", "conversion", ("amount",)),
]


def _isolated(text: str) -> str:
    """Text from outside (a group's name or id) escaped, in a `<bdi>`: a right-to-left override
    (U+202E) in a name otherwise turned the id and the names after it around on the page."""
    return f"<bdi>{escape(text)}</bdi>"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_html(report: dict[str, Any]) -> str:
    """The report's data (see `report.build_report`) as one HTML page."""
    days = report["days"]
    period = f"{days[0]} 至 {days[-1]}" if days else "（无）"
    folded = len(report["groups"]) > UNFOLDED_GROUPS
    titles = {pb["name"]: pb["title"] for pb in report["playbooks"]}
    parts = [
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report['title'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(report['title'])}</h1>",
        f'<p class="meta">时段 {period}（{escape(report["zone"])}），计划 {report["plan"]}。'
        "触达只计已执行的发送；发到群里的消息算群里当时每个人。</p>",
        _notice(report.get("notice")),
        _whole_run(report.get("whole_run")),
        _burst(report["burst"]),
        _contents(report),
        '<h2 id="groups">各群每日数据</h2>',
        _overview(report["groups"]),
        *(_group(group, days, index, folded) for index, group in enumerate(report["groups"])),
        '<h2 id="playbooks">剧本漏斗</h2>' + _whole_run_note(report),
        *(_playbook(pb) for pb in report["playbooks"]),
        *(
            (
                '<h2 id="experiments">实验</h2>' + _whole_run_note(report),
                *(_experiment(x, titles.get(x["playbook"], x["playbook"])) for x in report["experiments"]),
            )
            if report["experiments"]
            else ()
        ),
        *(
            (
                '<h2 id="pilots">试点对比</h2>',
                *(_pilot(x, titles.get(x["playbook"], x["playbook"])) for x in report["pilots"]),
            )
            if report["pilots"]
            else ()
        ),
        '<h2 id="calendar-title">群日历</h2>',
        _calendar(report["calendar"]),
        "</body></html>\n",
    ]
    return "".join(parts)


def _notice(notice: dict[str, Any] | None) -> str:
    # Said at the top: a page of zeros for days before the data began read as a dead community.
    return f'<p class="notice" id="notice">{escape(notice["text"])}</p>' if notice else ""


def _whole_run(whole: dict[str, Any] | None) -> str:
    # A report cut to some days: its funnels and experiments are the whole run's, said up front.
    return f'<p class="notice" id="whole-run">{escape(whole["text"])}</p>' if whole else ""


def _whole_run_note(report: dict[str, Any]) -> str:
    whole = report.get("whole_run")
    return f'<p class="meta">整个模拟 {whole["days"][0]} 至 {whole["days"][1]} 的数据。</p>' if whole else ""


def _burst(burst: dict[str, Any] | None) -> str:
    if burst is None:
        return ""
    rows = "".join(
        f'<li>{escape(name)}: <b data-burst-playbook="{escape(name)}">{count}</b></li>'
        for name, count in burst["by_playbook"].items()
    )
    return (
        f'<div class="burst" id="burst"><b>首日集中触发</b>：{burst["day"]} 共 '
        f'<b data-burst="actions">{burst["actions"]}</b> 个动作，平常每天约 {_value(burst["usual"])} 个。'
        f"上线第一天，已经满足条件的人会一起被处理，请提前知会。<ul>{rows}</ul></div>"
    )


def _contents(report: dict[str, Any]) -> str:
    """Links to each part of the page: with many groups, the funnels and experiments come only
    after every group's section."""
    parts = [("groups", "各群每日数据"), ("playbooks", "剧本漏斗")]
    parts += [("experiments", "实验")] if report["experiments"] else []
    parts += [("pilots", "试点对比")] if report["pilots"] else []
    parts += [("calendar-title", "群日历")]
    links = " · ".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in parts)
    return f'<nav class="meta" id="contents">目录：{links}</nav>'


# The period's totals a group's row in the overview shows (the distinct counts do not add up
# over days, see `report._group`).
_OVERVIEW = [("reach", "deliveries"), ("activity", "messages")]
_OVERVIEW += [("growth", f) for f in FAMILIES["growth"]] + [
    ("conversion", "orders"),
    ("conversion", "amount"),
]


def _overview(groups: list[dict[str, Any]]) -> str:
    """One row a group, its totals over the period, linked to its section: many groups' sections
    make a page too long to find one in."""
    if not groups:
        return '<p class="meta" id="groups-empty">这段时间没有群的数据。</p>'
    head = "".join(f"<th>{FAMILY_LABELS[family]}·{LABELS[f]}</th>" for family, f in _OVERVIEW)
    rows = "".join(
        f'<tr><td class="text"><a href="#group-{index}">{escape(group["name"])}</a></td>'
        f'<td class="text">{escape(group["id"])}</td>'
        + "".join(
            f'<td data-total-group="{escape(group["id"])}" data-total="{family}.{f}">'
            f"{_value(group['totals'][family][f])}</td>"
            for family, f in _OVERVIEW
        )
        + "</tr>"
        for index, group in enumerate(groups)
    )
    return (
        f'<table id="overview"><tr><th class="text">群</th><th class="text">群 id</th>{head}</tr>{rows}</table>'
        f'<p class="meta">以上为整个时段的合计{"；点群名展开该群每天的数据" if len(groups) > UNFOLDED_GROUPS else ""}。</p>'
    )


def _group(group: dict[str, Any], days: list[str], index: int, folded: bool) -> str:
    gid = escape(group["id"])
    title = f'{_isolated(group["name"])} <span class="meta">{_isolated(group["id"])}</span>'
    if folded:
        # Closed until asked for, with no script: the link's target is inside, and a browser
        # opens the closed `details` around the target of a link it follows. Its charts are
        # paths and its table says where each figure comes from once a column, not once a
        # cell: 400 groups' sections made a page of 36 MB over 30 days.
        body = f'<div class="charts">{_charts(group, days, bar_paths)}</div>{_days_table(group)}'
        return (
            f'<details class="group" data-group="{gid}"><summary><h3>{title}</h3></summary>'
            f'<div id="group-{index}">{body}</div></details>'
        )
    head = "".join(
        f"<th>{FAMILY_LABELS[family]}·{LABELS[f]}</th>"
        for family, figures in FAMILIES.items()
        for f in figures
    )
    rows = []
    for row in group["days"]:
        cells = "".join(
            f'<td data-group="{gid}" data-day="{row["day"]}" data-figure="{family}.{f}">'
            f"{_value(row[family][f])}</td>"
            for family, figures in FAMILIES.items()
            for f in figures
        )
        rows.append(f'<tr><th class="text">{row["day"]}</th>{cells}</tr>')
    body = (
        f'<div class="charts">{_charts(group, days, bar_chart)}</div>'
        f'<table><tr><th class="text">日期</th>{head}</tr>{"".join(rows)}</table>'
    )
    return f'<section class="group" data-group="{gid}" id="group-{index}"><h3>{title}</h3>{body}</section>'


def _charts(
    group: dict[str, Any], days: list[str], draw: Callable[[list[str], list[tuple[str, list[float]]]], str]
) -> str:
    charts = []
    for title, family, figures in _CHARTS:
        series = [(LABELS[f], [row[family][f] for row in group["days"]]) for f in figures]
        charts.append(
            f'<div class="chart-box"><h4>{title}</h4>'
            f"{draw(days, series)}<div>{legend([label for label, _ in series])}</div></div>"
        )
    return "".join(charts)


def _days_table(group: dict[str, Any]) -> str:
    """A folded group's figures by day: each column's figure named in its heading
    (`data-figure`), each row's day in its first cell, the group on the section."""
    head = "".join(
        f'<th data-figure="{family}.{f}">{FAMILY_LABELS[family]}·{LABELS[f]}</th>'
        for family, figures in FAMILIES.items()
        for f in figures
    )
    # A cell's and a row's end tags are left out, as HTML allows before the next cell or row:
    # they were a fifth of such a page.
    rows = "".join(
        f"<tr><th>{row['day']}"
        + "".join(f"<td>{_value(row[family][f])}" for family, figures in FAMILIES.items() for f in figures)
        for row in group["days"]
    )
    return f'<table class="days"><tr><th>日期</th>{head}</tr>{rows}</table>'


def _playbook(pb: dict[str, Any]) -> str:
    name = escape(pb["name"])
    flows = pb["flows"]
    stages = [(stage["label"], stage["count"]) for stage in pb["funnel"]]
    actions = "".join(
        f'<tr><td class="text">{escape(kind)}</td><td class="text">{escape(status)}</td>'
        f'<td data-playbook="{name}" data-action="{escape(kind)}.{escape(status)}">{count}</td></tr>'
        for kind, statuses in pb["actions"].items()
        for status, count in statuses.items()
    )
    flow_cells = "".join(
        f'<td data-playbook="{name}" data-flows="{key}">{flows[key]}</td>'
        for key in ("started", "completed", "exited", "running")
    )
    goals = "".join(
        f'<tr><td class="text">{escape(goal)}</td>'
        + "".join(
            f'<td data-playbook="{name}" data-goal="{escape(goal)}" data-measure="{key}">{_value(counts[key])}</td>'
            for key in ("conversions", "converted", "amount")
        )
        + "</tr>"
        for goal, counts in pb["goals"].items()
    )
    goal_table = (
        f'<table><tr><th class="text">目标</th><th>转化次数</th><th>转化人数</th><th>金额</th></tr>{goals}</table>'
        if goals
        else ""
    )
    return (
        f'<div class="playbook" data-playbook="{name}"><h3>{escape(pb["title"])} '
        f'<span class="meta">{name}</span></h3>{funnel(stages)}'
        f"<table><tr><th>开始</th><th>走完</th><th>中途退出</th><th>进行中</th></tr><tr>{flow_cells}</tr></table>"
        f"{goal_table}"
        f'<table><tr><th class="text">动作</th><th class="text">结果</th><th>次数</th></tr>{actions}</table></div>'
    )


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


# Why an arm has no comparison (`experiments._versus`'s `missing`), in the report's words.
_MISSING = {
    "arm": "本组没有人，无法比较",
    "baseline": "对照组没有人，无法比较",
    "goal": "剧本没有目标，无从算转化",
}
# What a split playbook without a goal is told to write.
_GOAL_HINT = '剧本没有声明目标，只能看分组人数和触达。要比较转化，在剧本里加一行，例如 goal "下单" = member orders within 7 days'


def _versus(arm: dict[str, Any], cell: str) -> str:
    if "difference" not in arm:
        # Without a control arm the first arm is what the others are set against.
        return f'<td class="text" colspan="2">{"对照" if arm["control"] else "比较基准（没有对照组）"}</td>'
    if arm["difference"] is None:
        return f'<td class="text" colspan="2" {cell} data-measure="missing">{_MISSING[arm["missing"]]}</td>'
    test = "Fisher 精确检验" if arm["test"] == "fisher" else "z 检验"
    # A p-value is never 0: one rounded to 0 is shown as below the last digit kept. Ops read the
    # verdict, not the number.
    p = "< 0.0001" if arm["p"] < 0.0001 else f"{arm['p']:.4f}"
    verdict = "显著" if arm["p"] < SIGNIFICANT else "不显著"
    return (
        f'<td {cell} data-measure="difference">{_points(arm["difference"])}</td>'
        f'<td {cell} data-measure="p">{p}（{test}，{verdict}）</td>'
    )


def _points(difference: float) -> str:
    """A difference of two rates in percentage points, signed: `+2.1 个百分点`."""
    return f"{difference * 100:+.1f} 个百分点"


def _experiment(experiment: dict[str, Any], title: str) -> str:
    name = escape(experiment["playbook"])
    goal = escape(experiment["goal"] or "（未声明目标）")
    rows = []
    for arm in experiment["arms"]:
        cell = f'data-playbook="{name}" data-arm="{escape(arm["arm"])}"'
        # An arm nobody was put in has no rate nor interval (`experiments.experiments`).
        rate = "—" if arm["rate"] is None else _percent(arm["rate"])
        interval = "—" if arm["ci"] is None else f"{_percent(arm['ci'][0])} – {_percent(arm['ci'][1])}"
        rows.append(
            f'<tr><td class="text">{escape(arm["arm"])}{"（对照组）" if arm["control"] else ""}</td>'
            f'<td {cell} data-measure="members">{arm["members"]}</td>'
            f'<td {cell} data-measure="reached">{arm["reached"]}</td>'
            f'<td {cell} data-measure="converted">{arm["converted"] if experiment["goal"] else "—"}</td>'
            f'<td {cell} data-measure="rate">{rate}</td>'
            f"<td>{interval}</td>{_versus(arm, cell)}</tr>"
        )
    heading = f"{escape(title)} · 目标「{goal}」" if experiment["goal"] else escape(title)
    within = f"分组后 {_chinese_within(experiment['within'])} 内" if experiment["within"] else ""
    hint = "" if experiment["goal"] else f'<p class="meta" data-hint="goal">{escape(_GOAL_HINT)}</p>'
    return (
        f'<section class="experiment" data-playbook="{name}"><h3>{heading} '
        f'<span class="meta">{name} {within}</span></h3>{hint}'
        '<table><tr><th class="text">组</th><th>人数</th><th>触达</th><th>转化</th><th>转化率</th>'
        f"<th>95% 置信区间</th><th>与对照之差</th><th>p 值</th></tr>{''.join(rows)}</table>"
        f'<p class="meta">p 值小于 {SIGNIFICANT} 记为「显著」：这么大的差别不太像是偶然；「不显著」时，'
        "差别可能只是运气，人数多些再看。</p></section>"
    )


_UNITS = {"minute": "分钟", "hour": "小时", "day": "天", "week": "周", "month": "个月", "year": "年"}


def _chinese_within(within: str) -> str:
    """`7 days` (the JSON's goal time) as the page says it, `7 天`."""
    amount, _, unit = within.partition(" ")
    return f"{amount} {_UNITS.get(unit.removesuffix('s'), unit)}"


# Why a pilot is not compared (`experiments.pilots`'s `missing`), and what to do.
_PILOT_MISSING = {
    "pilot": "它点名的群都不在这次的数据里，无从对比：检查时间线里群的 id。",
    "rest": "数据里没有别的群可以对比：时间线里要有不在试点里的群（最好和试点群有相同的标签）。",
    "days": "它的生效时段（active from … until …）和这次数据的日期没有重叠，无从对比。",
}


def _pilot(pilot: dict[str, Any], title: str) -> str:
    name = escape(pilot["playbook"])
    if "missing" in pilot:
        return (
            f'<section class="pilot" data-pilot="{name}"><h3>{escape(title)}：没有对比 <span class="meta">{name}</span></h3>'
            f'<p class="meta" data-missing="{pilot["missing"]}">{_PILOT_MISSING[pilot["missing"]]}</p></section>'
        )
    rows = "".join(
        f'<tr><td class="text">{FAMILY_LABELS[row["family"]]}·{LABELS[row["figure"]]}</td>'
        + "".join(
            f'<td data-pilot="{name}" data-measure="{row["family"]}.{row["figure"]}" data-side="{side}">'
            f"{_value(row[side])}</td>"
            for side in ("pilot", "rest", "difference")
        )
        + "</tr>"
        for row in pilot["figures"]
    )
    first, last = pilot["days"]
    return (
        f'<section class="pilot" data-pilot="{name}"><h3>{escape(title)}：试点群 {"、".join(map(_isolated, pilot["pilot"]))} '
        f'对比其他群 {"、".join(map(_isolated, pilot["rest"]))}</h3><p class="meta">{name} · {first} 至 {last}，每群每天平均</p>'
        f'<table><tr><th class="text">数据</th><th>试点群</th><th>其他群</th><th>差</th></tr>{rows}</table></section>'
    )


def _held(slot: dict[str, Any]) -> str:
    # What the delivery policy made of the entry, as `sopdsl plan` says it: moved, or dropped.
    said = ""
    if slot.get("planned"):
        said += (
            f'<span class="moved">（原定 {escape(slot["planned"])}，推迟：{escape(slot["moved_by"])}）</span>'
        )
    if slot.get("dropped"):
        said += f'<span class="dropped">（未发出：{escape(slot["dropped"])}）</span>'
    return said


def _calendar(slots: list[dict[str, Any]]) -> str:
    if not slots:
        return '<p class="meta" id="calendar-empty">这段时间没有按日历排定的动作。</p>'
    rows = "".join(
        f'<tr class="slot"><td class="text">{slot["at"]}</td><td class="text">{escape(slot["group"])}</td>'
        f'<td class="text">{escape(slot["playbook"])}</td><td class="text">{escape(slot["words"])}'
        f"{_held(slot)}</td></tr>"
        for slot in slots
    )
    return (
        '<table id="calendar"><tr><th class="text">时间</th><th class="text">群</th>'
        f'<th class="text">剧本</th><th class="text">内容</th></tr>{rows}</table>'
    )
