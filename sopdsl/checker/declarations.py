"""Declarations to model: time zone, attributes, counters, events, actions, coupons, groups,
calendars, templates and policy. Fills the symbol tables the playbook checks resolve against."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from sopdsl.checker import attachments, dates, model, templates, values
from sopdsl.checker.context import Context, first_set, loc, where
from sopdsl.checker.platform import check_platform
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import (
    BUILTIN_COUNTERS,
    CAP_NOUNS,
    CAP_PERIODS,
    CAP_SUBJECTS,
    MEMBER_FIELDS,
    OVERFLOW,
    TYPES,
)

if TYPE_CHECKING:
    from sopdsl.source import Span

# A message longer than this rarely fits one phone screen (scenario J1).
SCREEN_CHARACTERS = 600
SCREEN_LINES = 24

# Type words from other languages and spreadsheets, and what they are called here.
_TYPE_SYNONYMS = {
    "int": "number",
    "integer": "number",
    "float": "number",
    "decimal": "number",
    "double": "number",
    "数字": "number",
    "string": "text",
    "str": "text",
    "文本": "text",
    "boolean": "bool",
    "日期": "date",
    "time": "date",
    "timestamp": "date",
}


def value_type(ctx: Context, name: nodes.Name) -> model.ValueType | None:
    """A checked type word."""
    found = TYPES.get(name.text)
    if found is None:
        synonym = _TYPE_SYNONYMS.get(name.text.lower())
        hint = (
            f"did you mean '{synonym}'?"
            if synonym
            else did_you_mean(name.text, TYPES) or "types are text, number, date and bool"
        )
        ctx.error("SOP113", f"unknown type '{name.text}'", name.span, hint)
    return found


def _fields(ctx: Context, fields: tuple[nodes.Field, ...]) -> dict[str, model.ValueType]:
    checked: dict[str, model.ValueType] = {}
    for f in fields:
        kind = value_type(ctx, f.type)
        if f.name.text in checked:
            ctx.error("SOP111", f"field '{f.name.text}' is declared twice", f.name.span, "keep one of them")
        elif kind is not None:
            checked[f.name.text] = kind
    return checked


def _title(node: nodes.Str | None) -> str | None:
    return node.value if node is not None else None


def collect(ctx: Context, files: list[nodes.File]) -> tuple[str | None, model.Policy]:
    """Check every declaration but playbooks; return the program's time zone and policy."""
    zones: list[tuple[str, Span]] = []
    rules: list[nodes.PolicyRule] = []
    platforms: list[nodes.PlatformDecl] = []
    dates.declare_holidays(ctx, files)
    for file in files:
        for decl in file.declarations:
            match decl:
                case nodes.TimezoneDecl():
                    zone = values.zone(ctx, decl.zone)
                    if zone is not None:
                        zones.append((zone, decl.span))
                case nodes.PolicyDecl():
                    rules.extend(decl.rules)
                case nodes.PlatformDecl():
                    platforms.append(decl)
                case nodes.IncludeDecl() | nodes.PlaybookDecl() | nodes.HolidaysDecl():
                    # includes were followed by the loader; playbooks are checked after this;
                    # holiday lists before it, so any calendar may name one
                    pass
                case (
                    nodes.AttributeDecl()
                    | nodes.CounterDecl()
                    | nodes.EventDecl()
                    | nodes.ActionDecl()
                    | nodes.CouponDecl()
                    | nodes.GroupDecl()
                    | nodes.CalendarDecl()
                    | nodes.TemplateDecl()
                ):
                    _declaration(ctx, decl)
                case _:
                    assert_never(decl)
    for zone, span in zones[1:]:
        if zone != zones[0][0]:
            first = zones[0][1]
            ctx.error(
                "SOP114",
                f"time zone '{zone}' conflicts with '{zones[0][0]}' declared at {where(first, span)}",
                span,
                "a program has one default zone; give groups their own with `timezone` inside `group`",
            )
    checked = policy(ctx, rules)
    ctx.platform, cap = check_platform(ctx, platforms)
    if cap is not None:  # the platform's limit, enforced like the policy's caps
        checked = checked.model_copy(update={"caps": (*checked.caps, cap)})
    return (zones[0][0] if zones else None), checked


def _declaration(ctx: Context, decl: nodes.SymbolDecl) -> None:
    match decl:
        case nodes.AttributeDecl():
            kind = value_type(ctx, decl.type)
            name = decl.name.text
            if name in MEMBER_FIELDS:
                ctx.error(
                    "SOP111", f"'{name}' is a built-in member field", decl.name.span, "choose another name"
                )
            elif kind is not None:
                ctx.declare(
                    "attribute",
                    name,
                    decl.name.span,
                    model.Attribute(name=name, type=kind, title=_title(decl.title)),
                )
        case nodes.CounterDecl():
            name = decl.name.text
            if name in BUILTIN_COUNTERS:
                ctx.error("SOP111", f"'{name}' is a built-in counter", decl.name.span, "choose another name")
            else:
                ctx.declare(
                    "counter", name, decl.name.span, model.Counter(name=name, title=_title(decl.title))
                )
        case nodes.EventDecl():
            fields = _fields(ctx, decl.fields)
            event = model.EventType(name=decl.name.text, title=_title(decl.title), fields=fields)
            ctx.declare("event", decl.name.text, decl.name.span, event)
        case nodes.ActionDecl():
            fields = _fields(ctx, decl.fields)
            action = model.ActionType(name=decl.name.text, title=_title(decl.title), fields=fields)
            ctx.declare("action", decl.name.text, decl.name.span, action)
        case nodes.CouponDecl():
            _coupon(ctx, decl)
        case nodes.GroupDecl():
            _group(ctx, decl)
        case nodes.CalendarDecl():
            rule = calendar_rule(ctx, decl.spec)
            if rule is not None:
                calendar = model.Calendar(name=decl.name.text, title=_title(decl.title), rule=rule)
                ctx.declare("calendar", decl.name.text, decl.name.span, calendar)
            else:
                ctx.declare("calendar", decl.name.text, decl.name.span, None)
        case nodes.TemplateDecl():
            _template(ctx, decl)
        case nodes.HolidaysDecl():
            pass  # declared ahead of the others (`dates.declare_holidays`)
        case _:
            assert_never(decl)


def _coupon(ctx: Context, decl: nodes.CouponDecl) -> None:
    fields: dict[str, object] = {"name": decl.name.text, "title": _title(decl.title)}
    seen: set[nodes.CouponOptionKind] = set()
    for option in decl.options:
        if option.kind in seen:
            ctx.error("SOP114", f"coupon option '{option.kind.value}' is given twice", option.span)
            continue
        seen.add(option.kind)
        match option.kind:
            case nodes.CouponOptionKind.WORTH:
                if isinstance(option.value, nodes.Number):
                    fields["worth"] = values.number(ctx, option.value)
            case nodes.CouponOptionKind.VALID:
                if isinstance(option.value, nodes.Duration):
                    fields["valid"] = values.duration(ctx, option.value)
            case nodes.CouponOptionKind.NOT_TRANSFERABLE:
                fields["transferable"] = False
            case nodes.CouponOptionKind.STOCK:
                if isinstance(option.value, nodes.Number):
                    stock = values.whole(ctx, option.value, "a coupon's stock")
                    if stock is not None:
                        fields["stock"] = stock
            case _:
                assert_never(option.kind)
    ctx.declare("coupon", decl.name.text, decl.name.span, model.Coupon.model_validate(fields))


def _group(ctx: Context, decl: nodes.GroupDecl) -> None:
    tags: list[str] = []
    zone: str | None = None
    operator: str | None = None
    for option in decl.options:
        match option.kind:
            case nodes.GroupOptionKind.TAGS:
                tags.extend(s.value for s in option.values)
            case nodes.GroupOptionKind.TIMEZONE:
                zone = values.zone(ctx, option.values[0])
            case nodes.GroupOptionKind.OPERATOR:
                operator = option.values[0].value
            case _:
                assert_never(option.kind)
    group = model.Group(
        name=decl.name.text, title=_title(decl.title), tags=tuple(tags), timezone=zone, operator=operator
    )
    ctx.declare("group", decl.name.text, decl.name.span, group)


def _bounds(ctx: Context, bounds: tuple[nodes.CalBound | nodes.CalExcept, ...]) -> dict[str, object]:
    found: dict[str, object] = {}
    for bound in bounds:
        if isinstance(bound, nodes.CalExcept):
            if "skip" in found:
                ctx.error("SOP114", "'except' is given twice", bound.span, "list every day in one `except`")
            found["skip"] = dates.skipped(ctx, bound) or ()  # a wrong day is reported; the check fails
            continue
        key = "until" if bound.is_until else "start"
        if key in found:
            ctx.error("SOP114", f"'{'until' if bound.is_until else 'from'}' is given twice", bound.span)
        found[key] = values.date(ctx, bound.date)
    start, until = found.get("start"), found.get("until")
    if start is not None and until is not None and until < start:  # type: ignore[operator]
        ctx.error("SOP306", "the calendar ends before it starts", bounds[-1].span)
    return found


def calendar_rule(ctx: Context, spec: nodes.CalSpec) -> model.CalendarRule | None:
    """A checked calendar rule, or None after reporting what is wrong with it."""
    match spec:
        case nodes.CalWeekly():
            days = values.weekdays(ctx, spec.days)
            hours = values.times(ctx, spec.times)
            bounds = _bounds(ctx, spec.bounds)
            if days is None or hours is None:
                return None
            return model.Weekly.model_validate({"weekdays": days, "times": hours, **bounds})
        case nodes.CalInterval():
            every = values.duration(ctx, spec.every)
            first = values.datetime(ctx, spec.start)
            bounds = _bounds(ctx, spec.bounds)
            if every is None or first is None:
                return None
            return model.Interval.model_validate({"every": every, "first": first, **bounds})
        case nodes.CalDates():
            dates = [values.date(ctx, d) for d in spec.dates]
            hours = values.times(ctx, spec.times)
            if hours is None or any(d is None for d in dates):
                return None
            return model.Dates(dates=tuple(sorted({d for d in dates if d is not None})), times=hours)
        case nodes.CalCron():
            expression = values.cron(ctx, spec.expression)
            bounds = _bounds(ctx, spec.bounds)
            if expression is None:
                return None
            return model.Cron.model_validate({"expression": expression, **bounds})
        case _:
            assert_never(spec)


def _template(ctx: Context, decl: nodes.TemplateDecl) -> None:
    name = decl.name.text
    if decl.from_file:
        text = ctx.loaded.template_files.get(decl.body.value + "@" + decl.span.path)
        if text is None:
            ctx.declare("template", name, decl.name.span, None)
            return  # the loader already reported the unreadable file
    else:
        text = decl.body.value
    found = templates.variables(
        ctx, text, decl.body.span, decl.body.long and not decl.from_file, f"template '{name}'"
    )
    if len(text) > SCREEN_CHARACTERS or text.count("\n") > SCREEN_LINES:
        ctx.warning(
            "SOP203",
            f"template '{name}' is {len(text)} characters on {text.count(chr(10)) + 1} lines, more than one phone screen",
            decl.name.span,
            f"keep messages under {SCREEN_CHARACTERS} characters and {SCREEN_LINES} lines",
        )
    extras = attachments.extras(ctx, decl)
    template = model.Template(
        name=name,
        title=_title(decl.title),
        tags=tuple(s.value for s in decl.tags),
        source=text,
        variables=found or (),
        attachments=extras[0] if extras else (),
        mentions=extras[1] if extras else (),
        loc=loc(decl.span),
    )
    usable = found is not None and extras is not None
    if ctx.declare("template", name, decl.name.span, template if usable else None):
        ctx.templates_by_name[name] = template


def policy(ctx: Context, rules: list[nodes.PolicyRule]) -> model.Policy:
    """Merge and check every policy rule of the program."""
    fields: dict[str, object] = {}
    caps: list[model.Cap] = []
    protected: list[str] = []
    mixes: list[model.ContentMix] = []
    quiet_span: Span | None = None
    quiet_said: tuple[str, str] | None = None
    escalate: Span | None = None
    for rule in rules:
        match rule:
            case nodes.QuietHours():
                if quiet_span is not None and (rule.start.text, rule.end.text) == quiet_said:
                    continue  # the same hours, said again by another file of the program
                if quiet_span is not None:
                    ctx.error(
                        "SOP114", "quiet hours are set twice", rule.span, first_set(quiet_span, rule.span)
                    )
                    continue
                quiet_said = (rule.start.text, rule.end.text)
                quiet_span = rule.span
                start, end = values.time(ctx, rule.start), values.time(ctx, rule.end)
                if start is not None and end is not None:
                    if start == end:
                        ctx.error("SOP306", "quiet hours start and end at the same time", rule.span)
                    fields["quiet_start"], fields["quiet_end"] = start, end
            case nodes.Cap():
                cap = _cap(ctx, rule)
                if cap is not None:
                    caps.append(cap)
            case nodes.Protect():
                protected.extend(s.value for s in rule.tags)
            case nodes.ContentMix():
                mix = _content_mix(ctx, rule)
                if mix is not None:
                    mixes.append(mix)
            case nodes.Escalate():
                if escalate is not None and fields.get("escalate_to") == rule.to.value.strip():
                    continue  # the same chief owner, said again by another file of the program
                if escalate is not None:
                    ctx.error(
                        "SOP114",
                        "the chief owner tasks escalate to is set twice",
                        rule.span,
                        first_set(escalate, rule.span),
                    )
                    continue
                escalate = rule.span
                if not rule.to.value.strip() or "\n" in rule.to.value:
                    ctx.error(
                        "SOP501", "tasks escalate to a staff member: name one, on one line", rule.to.span
                    )
                else:
                    fields["escalate_to"] = rule.to.value.strip()
            case _:
                assert_never(rule)
    return model.Policy.model_validate(
        {**fields, "caps": caps, "protected_tags": tuple(dict.fromkeys(protected)), "content_mix": mixes}
    )


def _cap(ctx: Context, rule: nodes.Cap) -> model.Cap | None:
    ok = True
    noun = CAP_NOUNS.get(rule.noun.text)
    if noun is None:
        ctx.error(
            "SOP501",
            f"cannot cap '{rule.noun.text}'",
            rule.noun.span,
            did_you_mean(rule.noun.text, CAP_NOUNS) or "caps count sends, kicks, coupons or invites",
        )
        ok = False
    subject = model.CapSubject.ALL
    period: model.CapPeriod | None = None
    for word in rule.per:
        if word.text in CAP_SUBJECTS and subject is model.CapSubject.ALL:
            subject = CAP_SUBJECTS[word.text]
        elif word.text in CAP_PERIODS and period is None:
            period = CAP_PERIODS[word.text]
        else:
            ctx.error(
                "SOP501",
                f"unexpected 'per {word.text}'",
                word.span,
                did_you_mean(word.text, [*CAP_SUBJECTS, *CAP_PERIODS])
                or "write per member|group and per day|week|month",
            )
            ok = False
    if period is None and ok:
        ctx.error("SOP501", "a cap needs a period", rule.span, "add per day, per week or per month")
        ok = False
    limit = values.whole(ctx, rule.limit, "a cap's limit", code="SOP501")
    if limit is None:
        ok = False
    overflow = model.Overflow.DEFER
    if rule.overflow is not None:
        found = OVERFLOW.get(rule.overflow.text)
        if found is None:
            ctx.error(
                "SOP112",
                f"unknown overflow '{rule.overflow.text}'",
                rule.overflow.span,
                "write `else drop` or `else defer`",
            )
            ok = False
        else:
            overflow = found
    if rule.tags and not _cap_tags(ctx, rule, noun):
        ok = False
    if not ok or noun is None or period is None or limit is None:
        return None
    if limit == 0:
        # Deferred, what it counts would wait for ever, and a dry run shows not even that.
        fate = "is dropped" if overflow is model.Overflow.DROP else "waits for ever (else defer)"
        ctx.warning(
            "SOP505",
            f"at most 0 {rule.noun.text} lets none through: every one it counts {fate}",
            rule.limit.span,
            "to stop them, take the steps out or end the playbook with `active from … until …`; "
            "to limit them, give a number of 1 or more",
        )
    return model.Cap(
        limit=limit,
        noun=noun,
        subject=subject,
        period=period,
        channel=rule.via.text if rule.via is not None else None,
        overflow=overflow,
        loc=loc(rule.span),
        tags=tuple(dict.fromkeys(s.value for s in rule.tags)),
    )


def _cap_tags(ctx: Context, rule: nodes.Cap, noun: model.CapNoun | None) -> bool:
    """Check `of templates tagged ...`: sends only; a tag no template has is a warning."""
    first = rule.tags[0]
    if noun is not None and noun is not model.CapNoun.SEND:
        ctx.error(
            "SOP501",
            f"only sends have templates: a cap of {rule.noun.text} cannot count by template tags",
            first.span,
            f"drop `of templates tagged ...`, or cap sends: `at most {rule.limit.text} sends of templates tagged ...`",
        )
        return False
    known = {tag for template in ctx.templates_by_name.values() for tag in template.tags}
    for tag in rule.tags:
        if tag.value not in known:
            ctx.warning(
                "SOP501",
                f'no template is tagged "{tag.value}", so this cap never counts its sends',
                tag.span,
                did_you_mean(tag.value, known)
                or f'tag the templates it limits: `template NAME tagged "{tag.value}" = ...`',
            )
    return True


def scope(ctx: Context, node: nodes.Scope) -> model.Scope:
    """A checked scope; named groups must be declared."""
    match node.kind:
        case nodes.ScopeKind.NAMED:
            for name in node.names:
                ctx.lookup("group", "SOP106", name.text, name.span)
            return model.Scope(kind="named", groups=tuple(n.text for n in node.names))
        case nodes.ScopeKind.TAGGED:
            return model.Scope(kind="tagged", tags=tuple(s.value for s in node.tags))
        case nodes.ScopeKind.ALL:
            return model.Scope(kind="all")
        case nodes.ScopeKind.PRIVATE:
            return model.Scope(kind="private")
        case _:
            assert_never(node.kind)


def _content_mix(ctx: Context, rule: nodes.ContentMix) -> model.ContentMix | None:
    if not 0 <= rule.percent.value <= 100:
        ctx.error("SOP502", f"{rule.percent.text}% is not a percentage", rule.percent.span)
        return None
    return model.ContentMix(
        percent=rule.percent.value, tag=rule.tag.value, scope=scope(ctx, rule.scope), loc=loc(rule.span)
    )
