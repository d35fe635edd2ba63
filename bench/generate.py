"""A seeded generator of realistic community timelines, written as JSONL (docs/testing.md).

N members over D days in G groups (about one group per 400 members, tagged normal, edu or core
in a 7:2:1 mix). About a third of the members are present before the window, with history
(joined up to two years earlier, message and order counters, some tagged core or staff). The
rest join during the window: spread over the days with campaign bursts (a campaign every three
weeks or so brings a day of heavy joining). Chat rates are heavy-tailed: many lurkers who post
once in months, most members a few times a month, a few very chatty; every member's activity
fades over time with their own half-life, and follows a daily rhythm (quiet nights, peaks at
lunch and in the evening). About a third of the members buy; a few percent of the joiners are
spam accounts whose names start with "AAA" and never post; a few members leave.

Everything comes from one `random.Random(seed)`: the same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

ZONE = "Asia/Shanghai"
START = dt.datetime(2026, 3, 2, 0, 0)  # a Monday, midnight
_TAGS = ["normal", "normal", "edu", "core", "normal", "normal", "edu", "normal", "normal", "normal"]
# Relative chat intensity by local hour: quiet nights, lunch and evening peaks.
_RHYTHM = [0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.25, 0.6, 0.9, 1.0, 1.0, 1.1]
_RHYTHM += [1.8, 1.5, 1.0, 0.9, 0.9, 1.0, 1.2, 1.6, 2.0, 2.0, 1.6, 0.8]
_PEAK = max(_RHYTHM)
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞琳晨宇轩浩然欣怡梓涵子墨一诺"


@dataclass(frozen=True)
class Size:
    """One benchmark size: members, days, and the seed of its timeline."""

    members: int
    days: int
    seed: int = 2026

    @property
    def name(self) -> str:
        """Like `100k×90`."""
        return f"{_short(self.members)}x{self.days}"

    @property
    def groups(self) -> int:
        """How many groups: about 400 members each, at least four (every tag present)."""
        return max(4, self.members // 400)


def _short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _rate(rng: random.Random) -> float:
    """Messages per day at the start of a member's life: heavy-tailed."""
    roll = rng.random()
    if roll < 0.45:  # lurkers: a post every few months at most
        return rng.uniform(0.0, 0.02)
    if roll < 0.98:  # most members: a few posts a month
        return min(8.0, rng.lognormvariate(math.log(0.5), 1.0))
    return rng.uniform(3.0, 15.0)  # the very chatty few


def _arrivals(rng: random.Random, rate: float, begin: int, end: int, born: int) -> list[int]:
    """Message times in [begin, end): a Poisson process thinned by fading and the daily rhythm."""
    if rate <= 0.0:
        return []
    half_life = rng.uniform(20.0, 240.0) * 86400
    decay = math.log(2) / half_life
    times = []
    t = float(begin)
    per_second = rate / 86400
    while True:
        t += rng.expovariate(per_second)
        if t >= end:
            return times
        moment = int(t)
        hour = ((moment + 8 * 3600) // 3600) % 24  # Asia/Shanghai has no DST
        if rng.random() * _PEAK < _RHYTHM[hour] and rng.random() < math.exp(-(moment - born) * decay):
            times.append(moment)


def _day_time(rng: random.Random, day_start: int) -> int:
    """A time of day following the rhythm."""
    while True:
        second = rng.randrange(86400)
        if rng.random() * _PEAK < _RHYTHM[second // 3600]:
            return day_start + second


def generate(size: Size, path: Path) -> dict[str, int]:
    """Write the timeline of `size` to `path`; return counts of what it holds."""
    rng = random.Random(f"sopdsl-bench-{size.members}-{size.days}-{size.seed}")
    tz = ZoneInfo(ZONE)
    start = int(START.replace(tzinfo=tz).timestamp())
    end = start + size.days * 86400
    groups = [{"id": f"g{i}", "tags": [_TAGS[i % len(_TAGS)]]} for i in range(size.groups)]
    group_tags = [g["tags"][0] for g in groups]
    existing = size.members // 3
    # Campaigns: a burst of joins on one day about every three weeks.
    campaigns = [start + d * 86400 for d in range(rng.randrange(3, 10), size.days, rng.randrange(18, 25))]
    events: list[tuple[int, int, bytes]] = []  # (time, order, line)
    members: list[bytes] = []
    counts = {"members": size.members, "groups": size.groups, "existing": existing, "spam": 0}
    seq = 0
    for index in range(size.members):
        member = f"u{index}"
        group = rng.randrange(size.groups)
        gid = f"g{group}"
        spam = False
        if index < existing:
            joined = start - rng.randrange(86400, 730 * 86400)
            tags = []
            if group_tags[group] == "core" and rng.random() < 0.6:
                tags.append("core")
            if rng.random() < 0.005:
                tags.append("staff")
            record: dict[str, object] = {
                "id": member,
                "name": _name(rng),
                "groups": [gid],
                "joined": joined,
                "counters": {"messages": rng.randrange(0, 400), "orders": rng.randrange(0, 6)},
            }
            if tags:
                record["tags"] = tags
            members.append(msgspec.json.encode(record))
            born = joined
            begin = start
        else:
            if campaigns and rng.random() < 0.3:
                day = rng.choice(campaigns)
                joined = day + int(min(86399, max(0, rng.gauss(14 * 3600, 4 * 3600))))
            else:
                joined = _day_time(rng, start + rng.randrange(size.days) * 86400)
            if joined >= end:
                continue
            spam = rng.random() < 0.03
            name = (
                ("AAA" + rng.choice(("推广", "代购", "兼职", "福利")) + str(rng.randrange(1000, 9999)))
                if spam
                else _name(rng)
            )
            events.append(
                (
                    joined,
                    seq,
                    b'{"at":%d,"kind":"join","member":"%s","group":"%s","data":%s}'
                    % (joined, member.encode(), gid.encode(), msgspec.json.encode({"name": name})),
                )
            )
            seq += 1
            counts["spam"] += spam
            born = joined
            begin = joined + 1
        if spam:
            continue
        leave = end
        if index >= existing and rng.random() < 0.04:
            leave = begin + int(rng.random() * (end - begin))
        posts = _arrivals(rng, _rate(rng), begin, leave, born)
        prefix = (
            b'{"at":%d,"kind":"message","member":"' + member.encode() + b'","group":"' + gid.encode() + b'"}'
        )
        for moment in posts:
            events.append((moment, seq, prefix % moment))
            seq += 1
        if rng.random() < 1 / 3:  # a buyer
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
                moment = _day_time(
                    rng, begin - begin % 86400 + rng.randrange(max(1, (leave - begin) // 86400)) * 86400
                )
                if begin <= moment < leave:
                    amount = rng.choice((29, 49, 99, 199, 299, 599))
                    events.append(
                        (
                            moment,
                            seq,
                            b'{"at":%d,"kind":"order","member":"%s","group":"%s","data":{"amount":%d}}'
                            % (moment, member.encode(), gid.encode(), amount),
                        )
                    )
                    seq += 1
        if leave < end:
            events.append(
                (
                    leave,
                    seq,
                    b'{"at":%d,"kind":"leave","member":"%s","group":"%s"}'
                    % (leave, member.encode(), gid.encode()),
                )
            )
            seq += 1
    events.sort()
    header = {
        "sopdsl": "timeline",
        "version": 1,
        "description": f"generated community {size.name}, seed {size.seed}",
        "timezone": ZONE,
        "start": start,
        "end": end,
        "seed": size.seed,
        "groups": groups,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as out:
        out.write(msgspec.json.encode(header) + b"\n")
        for line in members:
            out.write(line + b"\n")
        buffer = []
        for _, _, line in events:
            buffer.append(line)
            if len(buffer) >= 65536:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    tmp.replace(path)
    counts["events"] = len(events)
    counts["bytes"] = path.stat().st_size
    return counts


def quiet(size: Size, path: Path, with_members: bool) -> dict[str, int]:
    """A quiet timeline: the groups of `size` (and its existing members if asked), no events."""
    rng = random.Random(f"sopdsl-quiet-{size.members}-{size.days}-{size.seed}")
    tz = ZoneInfo(ZONE)
    start = int(START.replace(tzinfo=tz).timestamp())
    groups = [{"id": f"g{i}", "tags": [_TAGS[i % len(_TAGS)]]} for i in range(size.groups)]
    header = {
        "sopdsl": "timeline",
        "version": 1,
        "description": f"quiet {size.days} days, {size.groups} groups"
        + (f", {size.members} members" if with_members else ""),
        "timezone": ZONE,
        "start": start,
        "end": start + size.days * 86400,
        "seed": size.seed,
        "groups": groups,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(msgspec.json.encode(header) + b"\n")
        if with_members:
            for index in range(size.members):
                record = {"id": f"u{index}", "name": _name(rng), "groups": [f"g{rng.randrange(size.groups)}"]}
                out.write(msgspec.json.encode(record) + b"\n")
    return {"members": size.members if with_members else 0, "groups": size.groups, "events": 0}
