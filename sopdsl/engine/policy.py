"""Delivery policy, enforced by the engine (not the adapters): quiet hours, caps, protected
members, kick limits and coupon stock. Decides, for one action at one instant, whether it goes
out now, later (and when), or not at all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.plan import Plan, timeutil
from sopdsl.plan.quiet import QUIET_KINDS, quiet_until

_NOUNS: Final = {
    "send": lang.CapNoun.SEND,
    "kick": lang.CapNoun.KICK,
    "grant": lang.CapNoun.COUPON,
    "invite": lang.CapNoun.INVITE,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """`go` now, `defer` until `until`, or `drop`/`block` with a reason."""

    verdict: str
    until: int | None = None
    reason: str | None = None


GO: Final = Decision("go")


@dataclass
class Delivery:
    """The policy's counters; one per engine."""

    policy: lang.Policy
    coupons: dict[str, lang.Coupon]
    counts: dict[tuple[int, str, str], int] = field(default_factory=dict)
    stock_used: dict[str, int] = field(default_factory=dict)
    # Each template's tags, for the caps that count only `sends of templates tagged ...`.
    template_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Action kinds some rule of this policy can hold back; every other kind goes out as it is.
    ruled: frozenset[str] = frozenset()
    # Per cap, the templates it counts, or None for a cap that counts every send.
    counted: tuple[frozenset[str] | None, ...] = ()
    # The policy's protected tags and caps, read per action held to the policy: kept out of the
    # pydantic model, whose fields are read through its `__getattr__` hook (a few times dearer).
    protected: tuple[str, ...] = field(init=False, default=())
    caps: tuple[lang.Cap, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.protected = tuple(self.policy.protected_tags)
        self.caps = tuple(self.policy.caps)
        self.counted = tuple(
            frozenset(name for name, tags in self.template_tags.items() if cap.counts(tags))
            if cap.tags
            else None
            for cap in self.policy.caps
        )
        nouns = {cap.noun for cap in self.policy.caps}
        ruled = {kind for kind, noun in _NOUNS.items() if noun in nouns}
        if self.policy.protected_tags:
            ruled.add("kick")
        if self.policy.quiet_start is not None and self.policy.quiet_end is not None:
            ruled |= QUIET_KINDS
        if any(coupon.stock is not None for coupon in self.coupons.values()):
            ruled.add("grant")
        self.ruled = frozenset(ruled)

    def moved_to(
        self,
        policy: lang.Policy,
        coupons: dict[str, lang.Coupon],
        template_tags: dict[str, tuple[str, ...]] | None = None,
    ) -> Delivery:
        """The counters carried over to another plan version's policy.

        A cap counts on where the new policy has the same cap (what, whom, how often, which
        channel and which templates' tags; its limit may change); stock used is kept by coupon name.
        """
        moved: dict[int, int] = {}
        for old, cap in enumerate(self.policy.caps):
            for new, other in enumerate(policy.caps):
                if new not in moved.values() and (
                    cap.noun,
                    cap.subject,
                    cap.period,
                    cap.channel,
                    cap.tags,
                ) == (other.noun, other.subject, other.period, other.channel, other.tags):
                    moved[old] = new
                    break
        counts = {
            (moved[i], subject, period): n for (i, subject, period), n in self.counts.items() if i in moved
        }
        return Delivery(
            policy,
            coupons,
            counts=counts,
            stock_used=dict(self.stock_used),
            template_tags=self.template_tags if template_tags is None else template_tags,
        )

    def left(self, coupon: str) -> int | None:
        """How many of a coupon's declared stock are still to grant; None if it has no stock."""
        declared = self.coupons.get(coupon)
        if declared is None or declared.stock is None:
            return None
        return max(declared.stock - self.stock_used.get(coupon, 0), 0)

    def decide(
        self, action: Action, now: int, tz: ZoneInfo, member_tags: AbstractSet[str] | None
    ) -> Decision:
        """What to do with an action due now, in the local zone `tz` of its group."""
        if action.kind not in self.ruled:
            return GO
        if action.kind == "kick":
            protected = self.protected
            hit = [t for t in protected if member_tags and t in member_tags]
            if hit:
                return Decision("block", reason=f"protected member (tagged {', '.join(hit)})")
        if action.kind in QUIET_KINDS and self.policy.quiet_start is not None:  # a call saved per send
            until = quiet_until(self.policy, now, tz)
            if until is not None:
                return Decision("defer", until=until, reason="quiet hours")
        if action.kind == "grant":
            coupon = self.coupons.get(str(action.detail.get("coupon")))
            if (
                coupon is not None
                and coupon.stock is not None
                and self.stock_used.get(coupon.name, 0) >= coupon.stock
            ):
                return Decision("drop", reason="out of stock")
        noun = _NOUNS.get(action.kind)
        if noun is None:
            return GO
        keys: list[tuple[int, str, str]] = []
        for index, cap in enumerate(self.caps):
            if cap.noun is not noun or (
                cap.channel is not None and cap.channel != action.detail.get("channel")
            ):
                continue
            counted = self.counted[index]
            if counted is not None and action.detail.get("template") not in counted:
                continue
            subject = self._subject(cap, action)
            if subject is None:
                continue
            period = period_key(cap.period, now, tz)
            key = (index, subject, period)
            if self.counts.get(key, 0) >= cap.limit:
                # The same words whether the cap drops or defers: which cap it was.
                reason = f"cap: {cap.text()}"
                if cap.overflow is lang.Overflow.DROP:
                    return Decision("drop", reason=reason)
                return Decision("defer", until=_next_period(cap.period, now, tz), reason=reason)
            keys.append(key)
        for key in keys:
            self.counts[key] = self.counts.get(key, 0) + 1
        if action.kind == "grant":
            name = str(action.detail.get("coupon"))
            self.stock_used[name] = self.stock_used.get(name, 0) + 1
        return GO

    def count_task(self, member: str, now: int, tz: ZoneInfo) -> str | None:
        """Count a message staff are asked to send a member against the caps that count tasks'
        messages (the platform's, `counting tasks`); the cap it goes over, if any. Staff send it
        by hand, so it is counted, never held back."""
        over = None
        for index, cap in enumerate(self.policy.caps):
            if cap.tasks:
                key = (index, f"m:{member}", period_key(cap.period, now, tz))
                if self.counts.get(key, 0) >= cap.limit:
                    over = cap.text()
                self.counts[key] = self.counts.get(key, 0) + 1
        return over

    def _subject(self, cap: lang.Cap, action: Action) -> str | None:
        if cap.subject is lang.CapSubject.ALL:
            return "*"
        if cap.subject is lang.CapSubject.GROUP:
            return f"g:{action.group}" if action.group else None
        return f"m:{action.member}" if action.target in ("member", "referrer") and action.member else None


# Period keys by period and local day (days since 1970-01-01): a cap asks for one at every
# action, and making it from a date costs ten times the lookup.
_PERIOD_KEYS: Final[dict[tuple[lang.CapPeriod, int], str]] = {}


def period_key(period: lang.CapPeriod, now: int, tz: ZoneInfo) -> str:
    """The calendar period an instant falls in, as a key: `2026-03-02`, `2026-W10`, `2026-03`."""
    day = timeutil.wall_seconds(now, tz) // 86400
    found = _PERIOD_KEYS.get((period, day))
    if found is None:
        if len(_PERIOD_KEYS) > 100_000:
            _PERIOD_KEYS.clear()
        found = _PERIOD_KEYS[(period, day)] = _period_text(period, timeutil.local_date(now, tz))
    return found


def _period_text(period: lang.CapPeriod, day: dt.date) -> str:
    if period is lang.CapPeriod.DAY:
        return day.isoformat()
    if period is lang.CapPeriod.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week}"
    return f"{day.year}-{day.month:02d}"


def _next_period(period: lang.CapPeriod, now: int, tz: ZoneInfo) -> int:
    day = timeutil.local_date(now, tz)
    if period is lang.CapPeriod.DAY:
        start = day + dt.timedelta(days=1)
    elif period is lang.CapPeriod.WEEK:
        start = day + dt.timedelta(days=7 - day.weekday())
    else:
        start = timeutil.add_months(day.replace(day=1), 1)
    return timeutil.resolve(dt.datetime.combine(start, dt.time()), tz)


def template_tags(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each template's tags, as the caps scoped by them read them."""
    return {name: template.tags for name, template in plan.declarations.templates.items()}
