"""A small bot that embeds sopdsl: it feeds group events to the runtime and performs the actions.

A real bot would get its events from WeCom or Telegram callbacks and send real messages; this one
replays a day and a half of a reading club's group on a manual clock and prints what it would do,
so it runs offline in a second. See README.md beside it.

    python examples/welcome_bot/bot.py                      # compiles welcome.sop beside it
    python examples/welcome_bot/bot.py --plan plan.json     # or runs a plan from `sopdsl compile`
    python examples/welcome_bot/bot.py --store sqlite:///welcome.db
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import EventError, Runtime

HERE = Path(__file__).resolve().parent
ZONE = ZoneInfo("Asia/Shanghai")
KINDS = ("send", "tag", "untag", "kick", "grant", "invite", "task", "call", "dissolve")


def local(moment: str) -> int:
    """A local time in the club's zone as epoch seconds."""
    return int(dt.datetime.fromisoformat(moment).replace(tzinfo=ZONE).timestamp())


def perform(action: Action, key: str) -> None:
    """The bot's executor: here it prints what a real bot would send or do."""
    when = dt.datetime.fromtimestamp(action.time, ZONE).strftime("%m-%d %H:%M")
    if action.kind == "send":
        what = str(action.detail["text"]).replace("\n", " ")
    elif action.kind == "grant":
        what = f"coupon {action.detail['coupon']}"
    else:
        what = str(action.detail)
    print(f"{when}  {action.kind:<5} {action.member or action.group}  {what}")


def load_plan(path: str | None) -> sopdsl.Plan:
    """A compiled plan.json, or the playbook beside this file compiled now."""
    if path is not None:
        return sopdsl.load_plan(Path(path).read_text(encoding="utf-8"))
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(HERE / "welcome.sop")))


def main() -> None:
    """Replay the club's timeline through the runtime, hour by hour."""
    options = argparse.ArgumentParser(description="A small bot that embeds the sopdsl runtime.")
    options.add_argument("--plan", help="a plan.json from `sopdsl compile` (default: compile welcome.sop)")
    options.add_argument("--store", default="memory://", help="memory:// (default) or sqlite:///file.db")
    args = options.parse_args()

    clock = ManualClock(local("2026-03-09 09:00"))
    runtime = Runtime(load_plan(args.plan), args.store, executors=dict.fromkeys(KINDS, perform), clock=clock)
    runtime.add_group("g1", name="读书会1群")

    timeline = [
        ("2026-03-09 09:00", {"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}}),
        ("2026-03-09 10:00", {"kind": "join", "member": "m2", "group": "g1", "data": {"name": "李四"}}),
        ("2026-03-09 11:00", {"kind": "message", "member": "m2", "group": "g1", "data": {"text": "大家好"}}),
        # A member's name is data, never template code: this one is greeted by that literal name.
        ("2026-03-09 23:30", {"kind": "join", "member": "m3", "group": "g1", "data": {"name": "{{ 7*7 }}"}}),
    ]
    for number, (moment, event) in enumerate(timeline, start=1):
        clock.set(local(moment))
        runtime.tick()  # what fell due before this event goes first
        # The platform's id for the event (here made up): an event fed again, a callback the
        # platform retries or this timeline run again on the same --store, is taken once.
        event_id = f"club-{number}"
        try:
            runtime.feed({**event, "id": event_id})
        except EventError as exc:  # malformed, or older than what has run: nothing is stored
            print(f"event {event_id} refused: {exc} (field: {exc.field})")
    # No more events: let time pass, as the runtime's own loop (`runtime.run()`) would.
    end = local("2026-03-11 12:00")
    while clock.now() < end:
        clock.advance(3600)
        runtime.tick()
    stats = runtime.stats()
    runtime.close()
    print(f"events in: {stats['events_in']}, actions out: {stats['actions_out']}")


if __name__ == "__main__":
    main()
