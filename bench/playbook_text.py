"""The generated playbook files the front-end benchmark reads (`bench/frontend.py`): a fixed
seed and no wall clock, so the same text every run.

- `realistic`: like the files operators write, scaled up: declarations, Chinese template text
  blocks of typical length (about half of the bytes), and playbooks with triggers, guards,
  calendar entries and nested steps;
- `dense`: the same constructs with no template text, so almost every byte is a token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SIZE = 1024 * 1024
SEED = 20261111

# ---- text generation ----------------------------------------------------------------------------

# Phrases of the kind operators write in welcome texts, reminders and posts.
_OPENINGS = [
    "欢迎加入我们的大家庭！",
    "亲爱的群友们，大家好！",
    "新的一周开始啦，",
    "今晚八点直播课准时开始，",
    "感谢大家一直以来的支持，",
    "双十一活动预热开始了！",
    "本周干货分享来啦，",
    "好久不见，甚是想念，",
]
_BODIES = [
    "我们是一个专注于育儿知识分享的社群，每周二晚上有专家直播课",
    "群里每天中午十二点会分享一条实用小技巧，欢迎大家讨论",
    "入群后请先修改群昵称为城市加名字的格式，方便大家互相认识",
    "群规：不发广告、不发链接、不刷屏，违者移出群聊",
    "新人专享五十元优惠券已经发放到你的账户，七天内有效",
    "本周的主题是如何做好时间管理，欢迎大家踊跃分享自己的经验",
    "邀请三位好友入群即可获得一次抽奖机会，奖品丰富",
    "直播回放和思维导图已经整理好了，请在群公告里查看",
    "作业点评会在周四晚上进行，请大家按时提交作业",
    "活动期间下单满两百元立减三十元，叠加优惠券更划算",
    "如有任何问题，请随时联系群主或者小助手，我们会第一时间回复",
    "积分可以兑换精美礼品，积分规则请查看群公告",
    "晒单返现活动进行中，上传图片即可参与，名额有限先到先得",
    "每月月底会评选本月最活跃群友，送出专属福利",
]
_CLOSINGS = [
    "祝大家生活愉快！",
    "期待你的参与～",
    "有问题随时找我哦。",
    "我们下期再见！",
    "记得按时参加哦！",
]
_MEMBER_VARS = ["{{ member.name }}", "{{ member.nickname }}", "{{ member.region }}"]
_GROUP_VARS = ["{{ group.name }}", "{{ group.operator }}"]
_TAGS = ["normal", "edu", "vip", "content", "activity", "regional", "pilot"]
_PROTECTED = '"core", "koc", "staff"'
_REGIONS = ['"华东"', '"华南"', '"华北"', '"西南"']


@dataclass
class Stats:
    """What a generated file holds, for the report."""

    bytes: int = 0
    template_bytes: int = 0
    lines: int = 0
    templates: int = 0
    playbooks: int = 0
    declarations: int = 0


class Writer:
    """Collects the lines of a generated file and counts what it holds."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.stats = Stats()

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text.encode("utf-8"))

    def template(self, text: str) -> None:
        self.add(text)
        self.stats.template_bytes += len(text.encode("utf-8"))

    def finish(self) -> tuple[str, Stats]:
        text = "".join(self.parts)
        self.stats.bytes = len(text.encode("utf-8"))
        self.stats.lines = text.count("\n")
        return text, self.stats


def _paragraph(rng: random.Random, variables: list[str], sentences: int) -> str:
    parts = [rng.choice(_OPENINGS)]
    for _ in range(sentences):
        body = rng.choice(_BODIES)
        if variables and rng.random() < 0.4:
            body = f"{rng.choice(variables)}，{body}"
        parts.append(body + rng.choice(["，", "。", "！"]))
    parts.append(rng.choice(_CLOSINGS))
    return "".join(parts)


def _text_block(rng: random.Random, variables: list[str]) -> str:
    """A triple-quoted text block of typical length: 3-8 lines, 100-500 characters."""
    lines = [_paragraph(rng, variables, rng.randint(1, 3)) for _ in range(rng.randint(2, 5))]
    if rng.random() < 0.3:
        lines.insert(0, "【" + rng.choice(["通知", "活动", "提醒", "干货"]) + "】")
    if rng.random() < 0.3:
        lines.append("{% if member.region %}" + "所在地区：{{ member.region }}" + "{% endif %}")
    body = "".join(f"    {line}\n" for line in lines)
    return f'"""\n{body}    """'


def _group_block(rng: random.Random) -> str:
    lines = [_paragraph(rng, _GROUP_VARS, rng.randint(1, 3)) for _ in range(rng.randint(2, 5))]
    body = "".join(f"    {line}\n" for line in lines)
    return f'"""\n{body}    """'


def _header(w: Writer, dense: bool) -> None:
    w.add("# 社群运营 SOP 合集（基准测试用，自动生成）\n")
    w.add('timezone "Asia/Shanghai"\n\n')
    w.add('attribute region: text "地区"\n')
    w.add('attribute level: number "等级"\n')
    w.add('attribute stage: text "阶段"\n')
    w.add('attribute birthday: date "生日"\n')
    w.add('attribute vip: bool "会员"\n')
    w.add('counter lottery_chances "抽奖次数"\n')
    w.add('counter checkins "签到次数"\n')
    w.add('event share_photo "晒单" { image: text, order_id: text }\n')
    w.add('action crm_note "写入CRM" { level: text, note: text }\n')
    w.add('coupon new50 "新人券" worth 50 valid for 7 days not transferable stock 100\n')
    w.add('group core_club "核心会员群" { tagged "core" operator "小美" timezone "Asia/Shanghai" }\n')
    w.add("calendar lunch = every day at 12:00, 20:30 from 2026-01-01 until 2026-12-31\n")
    w.add('calendar payday = cron "0 9 1 * *"\n\n')
    w.add("policy {\n")
    w.add("    quiet hours 22:00 - 08:00\n")
    w.add("    at most 3 sends per member per day\n")
    w.add("    at most 5 sends per group per day else drop\n")
    w.add("    at most 4 sends per member per month via mass\n")
    w.add("    at most 20 kicks per day\n")
    w.add(f"    never kick members tagged {_PROTECTED}\n")
    w.add('    at least 10% of sends tagged "activity" in groups tagged "content"\n')
    w.add("}\n\n")
    if dense:
        # The dense file sends only these short one-line templates.
        w.add('template hi = "你好，{{ member.name }}！"\n')
        w.add('template hi_group = "大家好，欢迎来到{{ group.name }}。"\n')
        w.add('template gift = "{{ coupon.title }}已到账"\n')
        w.add('template plain = "今日打卡开始"\n\n')
        w.stats.templates += 4
    w.stats.declarations += 22


def _cond(rng: random.Random, depth: int = 0) -> str:
    atoms = [
        'member tagged "vip"',
        'member not tagged "blocked", "spam"',
        'member tagged any of "vip", "svip"',
        'group tagged all of "edu", "pilot"',
        "member.level >= 3",
        'member.stage == "explorer"',
        'member.name starts with "AAA"',
        'member.nickname matches "^.+-.+$"',
        f"member.region in [{', '.join(rng.sample(_REGIONS, 2))}]",
        "member.referrer is set",
        "messages in last 7 days >= 3",
        "orders in last 30 days > 0",
        "time between 12:00 and 14:00",
        "weekday in [saturday, sunday]",
        "member.vip == true",
    ]
    if depth < 2 and rng.random() < 0.35:
        op = rng.choice(["and", "or"])
        return f"({_cond(rng, depth + 1)} {op} {_cond(rng, depth + 1)})"
    if depth < 2 and rng.random() < 0.15:
        return f"not {_cond(rng, depth + 1)}"
    return rng.choice(atoms)


def _steps(rng: random.Random, names: dict[str, str], indent: int, depth: int = 0) -> list[str]:
    """Member-flow steps (a member is present); templates from `names`."""
    pad = "    " * indent
    out: list[str] = []
    for _ in range(rng.randint(2, 5)):
        roll = rng.random()
        if roll < 0.3:
            out.append(f"{pad}send {rng.choice([names['member'], names['short']])} to member")
        elif roll < 0.38:
            out.append(f'{pad}tag member "{rng.choice(_TAGS)}", "active"')
        elif roll < 0.44:
            out.append(f"{pad}add {rng.randint(1, 20)} to member.points")
        elif roll < 0.5:
            out.append(f'{pad}set member.stage = "{rng.choice(["explorer", "regular", "fan"])}"')
        elif roll < 0.56:
            out.append(f"{pad}wait {rng.randint(1, 48)} hours")
        elif roll < 0.62:
            out.append(f'{pad}call crm_note(level = "high", note = "来自SOP")')
        elif roll < 0.72 and depth < 2:
            out.append(f"{pad}if {_cond(rng)} {{")
            out.extend(_steps(rng, names, indent + 1, depth + 1))
            if rng.random() < 0.5:
                out.append(f"{pad}}} else if {_cond(rng)} {{")
                out.extend(_steps(rng, names, indent + 1, depth + 1))
            out.append(f"{pad}}} else {{")
            out.extend(_steps(rng, names, indent + 1, depth + 1))
            out.append(f"{pad}}}")
        elif roll < 0.8 and depth < 2:
            out.append(f"{pad}wait {rng.randint(1, 7)} days for member posts then {{")
            out.extend(_steps(rng, names, indent + 1, depth + 1))
            out.append(f"{pad}}} else {{")
            out.extend(_steps(rng, names, indent + 1, depth + 1))
            out.append(f"{pad}}}")
        elif roll < 0.86 and depth < 2:
            share = rng.choice([50, 30, 70])
            out.append(f"{pad}split {{")
            out.append(f"{pad}    red {share}% {{")
            out.extend(_steps(rng, names, indent + 2, depth + 1))
            out.append(f"{pad}    }}")
            out.append(f"{pad}    blue {100 - share}%: send {names['short']} to member")
            out.append(f"{pad}}}")
        elif roll < 0.92 and depth < 2:
            out.append(f'{pad}assign "回访{{{{ member.name }}}}" to operator within 2 days then {{')
            out.extend(_steps(rng, names, indent + 1, depth + 1))
            out.append(f"{pad}}}")
        else:
            out.append(f"{pad}send {names['group']} to group")
    return out


def _module(w: Writer, rng: random.Random, i: int, dense: bool) -> None:
    """One block of declarations and the playbooks using them."""
    w.add(f"# ---- 第 {i} 组：{rng.choice(['新人欢迎', '课程节奏', '清理潜水', '裂变活动'])} ----\n")
    if dense:
        names = {
            "member": "hi",
            "short": "plain",
            "group": "hi_group",
            "coupon": "gift",
            "activity": "hi_group",
        }
    else:
        names = {
            "member": f"welcome_{i}",
            "short": f"提醒_{i}",
            "group": f"group_post_{i}",
            "coupon": f"coupon_note_{i}",
            "activity": f"activity_{i}",
        }
        tag = rng.choice(_TAGS)
        w.add(f'template welcome_{i} "入群欢迎" tagged "{tag}" = ')
        w.template(_text_block(rng, _MEMBER_VARS))
        w.add("\n")
        w.add(f"template 提醒_{i} = ")
        w.template(f'"{{{{ member.name }}}}，{rng.choice(_BODIES)}"')
        w.add("\n")
        w.add(f'template group_post_{i} "群公告" tagged "activity" = ')
        w.template(_group_block(rng))
        w.add("\n")
        w.add(f'template activity_{i} "活动预告" tagged "activity" = ')
        w.template(_group_block(rng))
        w.add("\n")
        w.add(f"template coupon_note_{i} = ")
        w.template(
            '"""\n    {{ member.name }}，你的{{ coupon.title }}已到账，面值{{ coupon.worth }}元。\n    """'
        )
        w.add("\n")
        w.stats.templates += 5
    w.add(
        f'coupon c_{i} "券{i}" worth {rng.choice([5, 10, 50])} valid for {rng.randint(3, 30)} days stock 500\n'
    )
    w.add(
        f'calendar class_{i} "晚课" = every {rng.choice(["tuesday", "thursday", "周二"])} at {rng.randint(18, 21)}:00\n'
    )
    w.add(f'group g_{i} "分群{i}" {{ tagged "{rng.choice(_TAGS)}" operator "小美" }}\n\n')
    w.stats.declarations += 3 + (0 if dense else 5)

    scope = f'in groups tagged "{rng.choice(_TAGS)}"'
    # 1. welcome (J1, J2, J3)
    w.add(f'playbook welcome_{i} "新人欢迎" {{\n    scenario J1, J2\n    {scope}\n    on member joins\n')
    w.add('    when not member.name starts with "AAA"\n    do {\n')
    w.add(f"        send {names['member']} to member\n        grant c_{i} to member\n")
    w.add(f"        send {names['coupon']} to member\n")
    w.add(
        f"        wait 24 hours for member posts else {{\n            send {names['short']} to member\n        }}\n"
    )
    w.add("    }\n}\n\n")
    # 2. prune the silent (C1), with the protected tags excluded
    w.add(f'playbook prune_{i} "潜水清退" {{\n    scenario C1\n    {scope}\n')
    w.add(f"    on member silent for 28 days\n    when member not tagged {_PROTECTED}\n    do {{\n")
    w.add(f"        send {names['member']} to member\n")
    w.add(
        '        wait 3 days for member posts else {\n            kick member because "潜水超过四周"\n        }\n'
    )
    w.add("    }\n}\n\n")
    # 3. class cadence (K1)
    w.add(f'playbook cadence_{i} "晚课节奏" {{\n    scenario K1\n    {scope}\n')
    w.add(f"    at class_{i} - 1 day: send {names['group']} to group\n")
    w.add(f"    at class_{i} - 2 hours: send {names['group']} to group\n")
    w.add(
        f'    at class_{i} + 1 day at 10:00 {{\n        send {names["activity"]} to group\n        tag group "replayed"\n    }}\n'
    )
    w.add(
        f"    at every monday at 20:00 for each member when member.level >= 3: send {names['member']} to member\n"
    )
    w.add("}\n\n")
    # 4. a longer flow with conditions and nested steps
    trigger = rng.choice(
        [
            "member orders",
            "event share_photo",
            'member is tagged "vip"',
            "member.invites reaches 10",
            "3 days after member.joined_at at 10:00",
            "member.birthday at 09:00",
        ]
    )
    w.add(f'playbook flow_{i} "综合流程" {{\n    scenario A{i % 9 + 1}\n    {scope}\n    on {trigger}\n')
    w.add(f"    when {_cond(rng)}\n")
    w.add(f"    repeat after {rng.randint(1, 14)} days\n    apply to all members\n    missed skip\n")
    w.add("    do {\n")
    w.add("\n".join(_steps(rng, names, 2)) + "\n")
    w.add("    }\n}\n\n")
    w.stats.playbooks += 4
    w.stats.declarations += 4


def generate(kind: str, size: int = SIZE, seed: int = SEED) -> tuple[str, Stats]:
    """A playbook file of at least `size` UTF-8 bytes; `kind` is "realistic" or "dense"."""
    rng = random.Random(f"{seed}-{kind}")
    w = Writer()
    dense = kind == "dense"
    _header(w, dense)
    i = 0
    while w.size < size:
        i += 1
        _module(w, rng, i, dense)
    return w.finish()


# ---- measuring ----------------------------------------------------------------------------------
