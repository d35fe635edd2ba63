"""The checked language's goals: what counts as a conversion of a playbook.

Shared by the checked model and the plan (`sopdsl.lang`); the engine never reads them; the
figures (`sopdsl.figures`) count them. Annotations are resolved by pydantic in this module's
namespace: every name they use is imported here at run time.
"""

from __future__ import annotations

import enum

from sopdsl.lang.base import Duration, Model
from sopdsl.lang.conditions import Cond
from sopdsl.lang.triggers import EventPattern


class Goal(Model):
    """`goal "下单" = member orders [when C] within 7 days`: a member's event matching `pattern` (and
    `cond`, tested against the member, the group and the event) within `within` of being reached."""

    name: str
    pattern: EventPattern
    cond: Cond | None = None
    within: Duration
    loc: str = ""


class Attribution(enum.Enum):
    """Which playbook a conversion counts for when several reached the member within their goal's
    time: the one that reached them last, or first (the project file's `[figures] attribution`)."""

    LAST_TOUCH = "last touch"
    FIRST_TOUCH = "first touch"
