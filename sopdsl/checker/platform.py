"""The `platform` declaration: the platform's limits, checked once for the whole program.

Input: every `platform { ... }` of the program's files. Output: the checked `model.Platform`
(attachments allowed, actions it cannot perform for customer groups) and the cap its
per-customer mass-message limit becomes in the policy (`platform` set), so the engine enforces
it, the group calendar counts it, and SOP703 warns against it like any cap. Templates with more
attachments than it allows are SOP206 here; a step it cannot perform is SOP504 (steps.py).
Where a platform is declared, the program targets WeCom, so a template WeCom would refuse for its
length (its text over 4,000 bytes in UTF-8, a card's title over its limit) is SOP208 here: an
error when every rendering is over, a warning when the longest can be (`template_sizes.py`). A
task, or a send to the operator, goes to staff as an app message, which WeCom cuts at 2,048
bytes: one that is or can be over is a SOP208 warning at the step (`over_app_bytes`, called by
`program.py` once the playbooks are read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from sopdsl.checker import model, template_sizes, values
from sopdsl.checker.context import Context, first_set, loc
from sopdsl.diagnostics import did_you_mean
from sopdsl.enums import ValueType
from sopdsl.source import Span
from sopdsl.syntax import nodes
from sopdsl.vocabulary import CANNOT, CAP_PERIODS, GROUP_FIELDS, MEMBER_FIELDS, PLATFORM_NOUNS, TASKS


def check_platform(
    ctx: Context, decls: list[nodes.PlatformDecl]
) -> tuple[model.Platform | None, model.Cap | None]:
    """The program's platform and the cap of its mass-message limit (None where not declared)."""
    if not decls:
        return None, None
    for extra in decls[1:]:
        ctx.error(
            "SOP114",
            "the platform is declared twice",
            extra.span,
            f"first declared at line {decls[0].span.line}",
        )
    decl = decls[0]
    cap: model.Cap | None = None
    attachments: int | None = None
    cannot: list[str] = []
    seen: dict[str, nodes.PlatformLimit] = {}
    for rule in decl.rules:
        if isinstance(rule, nodes.PlatformCannot):
            cannot.extend(_cannot(ctx, rule))
            continue
        noun = "messages" if rule.noun.text == "message" else rule.noun.text
        if noun not in PLATFORM_NOUNS:
            hint = did_you_mean(rule.noun.text, PLATFORM_NOUNS) or "a platform limits messages or attachments"
            ctx.error("SOP503", f"the platform cannot limit '{rule.noun.text}'", rule.noun.span, hint)
            continue
        if noun in seen:
            ctx.error(
                "SOP114",
                f"the platform's {noun} limit is set twice",
                rule.span,
                first_set(seen[noun].span, rule.span),
            )
            continue
        seen[noun] = rule
        if noun == "messages":
            cap = _messages(ctx, rule)
        else:
            attachments = _attachments(ctx, rule)
    platform = model.Platform(
        title=decl.title.value if decl.title else None,
        attachments=attachments,
        cannot=tuple(dict.fromkeys(cannot)),
        loc=loc(decl.span),
    )
    if attachments is not None:
        _over_attachments(ctx, attachments, seen["attachments"])
    _over_bytes(ctx)
    return platform, cap


def _messages(ctx: Context, rule: nodes.PlatformLimit) -> model.Cap | None:
    """`at most N messages per member per PERIOD [counting CHANNEL, tasks]`: a member cap."""
    limit = values.whole(ctx, rule.limit, "the platform's message limit", minimum=1, code="SOP503")
    words = [w.text for w in rule.per]
    period = CAP_PERIODS.get(words[1]) if len(words) == 2 and words[0] == "member" else None
    if period is None:
        wrong = next((w for w in rule.per if w.text not in ("member", *CAP_PERIODS)), None)
        hint = did_you_mean(wrong.text, ["member", *CAP_PERIODS]) if wrong else None
        ctx.error(
            "SOP503",
            "the platform's message limit is per member and per day, week or month",
            wrong.span if wrong else rule.span,
            hint or f"write `at most {rule.limit.text} messages per member per month`",
        )
    channels = [w for w in rule.counting if w.text != TASKS]
    for extra in channels[1:]:
        ctx.error(
            "SOP503",
            "the platform's message limit counts one channel (and `tasks`)",
            extra.span,
            f"the sends `via {channels[0].text}` are the platform's mass messages; name only that channel",
        )
    if limit is None or period is None or len(channels) > 1:
        return None
    return model.Cap(
        limit=limit,
        noun=model.CapNoun.SEND,
        subject=model.CapSubject.MEMBER,
        period=period,
        channel=channels[0].text if channels else None,
        loc=loc(rule.span),
        platform=True,
        tasks=any(w.text == TASKS for w in rule.counting),
    )


def _attachments(ctx: Context, rule: nodes.PlatformLimit) -> int | None:
    """`at most N attachments`: at most what the executors can carry."""
    if rule.per or rule.counting:
        extra = (rule.per or rule.counting)[0]
        ctx.error("SOP503", "an attachment limit is per message: it takes no `per` or `counting`", extra.span)
        return None
    limit = values.whole(ctx, rule.limit, "the platform's attachment limit", minimum=1, code="SOP503")
    if limit is not None and limit > model.MAX_ATTACHMENTS:
        ctx.error(
            "SOP503",
            f"the executors send at most {model.MAX_ATTACHMENTS} attachments with a message, not {limit}",
            rule.limit.span,
        )
        return None
    return limit


def _cannot(ctx: Context, rule: nodes.PlatformCannot) -> list[str]:
    found = []
    for name in rule.actions:
        if name.text in CANNOT:
            found.append(name.text)
        else:
            hint = did_you_mean(name.text, CANNOT) or "the platform may be unable to " + ", ".join(CANNOT)
            ctx.error("SOP503", f"'{name.text}' is not an action a platform leaves to staff", name.span, hint)
    return found


def _over_attachments(ctx: Context, limit: int, rule: nodes.PlatformLimit) -> None:
    """Templates with more attachments than the platform allows (SOP206, at the template)."""
    for name, symbol in ctx.table("template").items():
        template = symbol.value
        if template is not None and len(template.attachments) > limit:
            ctx.error(
                "SOP206",
                f"template '{name}' has {len(template.attachments)} attachments; the platform allows {limit}",
                symbol.span,
                f"the platform's limit is at line {rule.span.line}",
            )


def _over_bytes(ctx: Context) -> None:
    """Templates WeCom would refuse for their length (SOP208, at the template)."""
    limit = model.WECOM_BYTES["text"]
    hint = (
        f"WeCom refuses a message to customers over {limit:,} bytes; a Chinese character is 3 bytes, "
        f"so keep it under about {limit // 3:,} of them, or split it into two templates"
    )
    field_type = _field_type(ctx)
    for name, symbol in ctx.table("template").items():
        template = symbol.value
        if template is None:
            continue
        for part, value in _card_texts(template):
            written, most = len(value.encode()), model.WECOM_BYTES[part]
            if written > most:
                ctx.error(
                    "SOP208",
                    f"template '{name}': its {part} is {written:,} bytes in UTF-8; WeCom takes at most {most:,}",
                    symbol.span,
                    f"WeCom refuses the message; shorten the {part} (a Chinese character is 3 bytes)",
                )
        size = template_sizes.size(template.source, field_type)
        if size is None:
            continue
        if size.least > limit:
            what = (
                f"is {size.least:,} bytes in UTF-8 ({len(template.source):,} characters)"
                if size.least == size.most
                else f"is at least {size.least:,} bytes in UTF-8 before its variables"
            )
            ctx.error("SOP208", f"template '{name}' {what}; WeCom takes at most {limit:,}", symbol.span, hint)
        elif size.most is not None and size.most > limit:
            ctx.warning(
                "SOP208",
                f"template '{name}' can be up to {size.most:,} bytes in UTF-8 once its variables are "
                f"filled in; WeCom takes at most {limit:,}",
                symbol.span,
                "a send over it fails, naming the template; " + hint,
            )


def over_app_bytes(ctx: Context, playbooks: Sequence[nodes.PlaybookDecl]) -> None:
    """SOP208 warnings, where a platform is declared, at a task (its text and the message it asks
    staff to send) or a send to the operator that can be over what WeCom keeps of an app message."""
    if ctx.platform is None:
        return
    field_type = _field_type(ctx)
    for playbook in playbooks:
        for step in _steps(playbook):
            if isinstance(step, nodes.Send) and step.target is nodes.Target.OPERATOR:
                size = _template_size(ctx, step.template.text, field_type)
                what = f"template '{step.template.text}', sent to the operator,"
                _over_app(ctx, what, size, step.template.span, _TO_OPERATOR)
            elif isinstance(step, nodes.Assign):
                _over_app(ctx, *_task(ctx, step, field_type), _TASK)


_TASK = (
    "the app message also carries the task's deadline, whom it is about and its key; a Chinese "
    "character is 3 bytes: shorten it, or leave the detail to a link"
)
_TO_OPERATOR = (
    "a send to the operator goes as an app message (message/send); a Chinese character is 3 bytes: "
    "shorten the template, or split it into two sends"
)


def _task(
    ctx: Context, step: nodes.Assign, field_type: template_sizes.FieldType
) -> tuple[str, template_sizes.Size | None, Span]:
    """What a task's app message is measured by (its text and the message it asks staff to send),
    and where it is pointed at: the longer of the two, the one to shorten."""
    text = template_sizes.size(step.text.value, field_type)
    if step.message is None:
        return "this task's text", text, step.text.span
    asked = _template_size(ctx, step.message.text, field_type)
    if text is None or asked is None:
        return "", None, step.span
    size = template_sizes.Size(text.least + asked.least, _sum(text.most, asked.most))
    span = step.text.span if text.least >= asked.least else step.message.span
    return f"this task's text with template '{step.message.text}'", size, span


def _over_app(ctx: Context, what: str, size: template_sizes.Size | None, span: Span, hint: str) -> None:
    # A warning, not an error: WeCom does not refuse an app message but cuts it, and it still
    # reaches staff, cut short with "…".
    limit = model.WECOM_BYTES["app text"]
    if size is None:
        return
    if size.least > limit:
        said = f"is {size.least:,} bytes in UTF-8" + (
            " before its variables" if size.most != size.least else ""
        )
    elif size.most is not None and size.most > limit:
        said = f"can be up to {size.most:,} bytes in UTF-8 once its variables are filled in"
    else:
        return
    message = f"{what} {said}; WeCom cuts an app message at {limit:,}, so staff get it cut short"
    ctx.warning("SOP208", message, span, hint)


def _template_size(
    ctx: Context, name: str, field_type: template_sizes.FieldType
) -> template_sizes.Size | None:
    symbol = ctx.table("template").get(name)
    template = symbol.value if symbol is not None else None
    return None if template is None else template_sizes.size(template.source, field_type)


def _sum(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _steps(node: object) -> Iterator[nodes.Send | nodes.Assign]:
    """Every send and task under a node (a playbook's items, branches, arms), in the order written."""
    if isinstance(node, tuple):
        for item in node:
            yield from _steps(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        if isinstance(node, nodes.Send | nodes.Assign):
            yield node
        for field in dataclasses.fields(node):
            if field.name != "span":
                yield from _steps(getattr(node, field.name))


def _card_texts(template: model.Template) -> list[tuple[str, str]]:
    """The texts of a template's cards that WeCom limits: link titles and descriptions, mini-program titles."""
    found: list[tuple[str, str]] = []
    for card in template.attachments:
        if isinstance(card, model.LinkAttachment):
            found.append(("link title", card.title))
            if card.description is not None:
                found.append(("link description", card.description))
        elif isinstance(card, model.MiniProgramAttachment):
            found.append(("miniprogram title", card.title))
    return found


def _field_type(ctx: Context) -> template_sizes.FieldType:
    """The type of a `member.x` or `group.x` a template reads (None for what it cannot say)."""
    attributes, counters = ctx.table("attribute"), ctx.table("counter")

    def field_type(path: str) -> ValueType | None:
        root, _, field = path.partition(".")
        if root == "group":
            return GROUP_FIELDS.get(field)
        if root != "member":
            return None
        if field in MEMBER_FIELDS:
            return MEMBER_FIELDS[field]
        if field in counters:
            return ValueType.NUMBER
        declared = attributes.get(field)
        value = declared.value if declared is not None else None
        return value.type if isinstance(value, model.Attribute) else None

    return field_type
