"""Quiet hours (免打扰): which actions they hold back and until when, for the engine's delivery
policy and for `sopdsl plan`, so that the calendar shows the time the engine really sends at.

Input: a policy, an instant and a zone. Output: the instant the quiet hours end, or None.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.plan import timeutil

# Only sends wait out the night: a kick, a tag or a grant made at 23:00 is made at 23:00.
QUIET_KINDS: Final = frozenset({"send"})


def quiet_until(policy: lang.Policy, now: int, tz: ZoneInfo) -> int | None:
    """When the policy's quiet hours that `now` falls in end (local to `tz`); None outside them
    or when the policy has none."""
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None:
        return None
    moment = timeutil.local_time(now, tz)
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    today = timeutil.local_date(now, tz)
    day = today if moment < end else today + dt.timedelta(days=1)
    return timeutil.resolve(dt.datetime.combine(day, end), tz)
