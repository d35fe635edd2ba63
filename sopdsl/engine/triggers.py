"""The trigger kinds' handlers, one per kind of `kinds.TRIGGERS`, each in its own module.

A new trigger kind is its `sopdsl.lang` trigger, its registry entry, a handler module and a line
here: `handler_for` fails mypy for a trigger type it does not name, and `tests/test_kinds.py`
fails for a registry entry without a handler.
"""

from __future__ import annotations

from typing import Any, assert_never

from sopdsl import lang
from sopdsl.engine.trigger_absence import ABSENCE
from sopdsl.engine.trigger_base import TriggerHandler
from sopdsl.engine.trigger_counts import GROUP_SIZE, THRESHOLD
from sopdsl.engine.trigger_dates import DATES
from sopdsl.engine.trigger_event import EVENT
from sopdsl.engine.trigger_group_silent import GROUP_SILENT
from sopdsl.kinds import TRIGGERS


def handler_for(trigger: lang.Trigger) -> TriggerHandler[Any]:
    """The handler of a trigger's kind (exhaustive: a trigger type not named here fails mypy)."""
    match trigger:
        case lang.OnEvent():
            return EVENT
        case lang.OnAbsence():
            return ABSENCE
        case lang.OnDateOffset() | lang.OnAnniversary():
            return DATES
        case lang.OnThreshold():
            return THRESHOLD
        case lang.OnGroupSize():
            return GROUP_SIZE
        case lang.OnGroupSilent():
            return GROUP_SILENT
        case _:
            assert_never(trigger)


_BY_NAME: dict[str, TriggerHandler[Any]] = {
    "event": EVENT,
    "absence": ABSENCE,
    "date_offset": DATES,
    "anniversary": DATES,
    "threshold": THRESHOLD,
    "group_size": GROUP_SIZE,
    "group_silent": GROUP_SILENT,
}
# By registry name, in the registry's order (the order the engine arms a member's triggers in): a
# registry entry without a handler stops the engine's import.
HANDLERS: dict[str, TriggerHandler[Any]] = {name: _BY_NAME[name] for name in TRIGGERS}
