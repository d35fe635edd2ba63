"""Playbook settings to model: scenario, scope, repeat, apply to, missed, on change, active, and the
review metadata (version, author, reviewed by)."""

from __future__ import annotations

from typing import Any, assert_never

from sopdsl.checker import model, values
from sopdsl.checker.context import Context
from sopdsl.checker.declarations import scope
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import APPLY_TO, MISSED, ON_CHANGE


def setting_word(item: nodes.PlaybookItem) -> str:
    """The keyword a setting is written with, for messages about it."""
    match item:
        case nodes.ScenarioSetting():
            return "scenario"
        case nodes.ScopeSetting():
            return "in"
        case nodes.WhenSetting():
            return "when"
        case nodes.RepeatSetting():
            return "repeat"
        case nodes.ApplySetting():
            return "apply to"
        case nodes.MissedSetting():
            return "missed"
        case nodes.ChangeSetting():
            return "on change"
        case nodes.ActiveSetting():
            return "active"
        case nodes.VersionSetting():
            return "version"
        case nodes.AuthorSetting():
            return "author"
        case nodes.ReviewSetting():
            return "reviewed by"
        case nodes.DoSetting():
            return "do"
        case nodes.OnSetting() | nodes.AtEntry() | nodes.GoalSetting():
            # Never asked: a playbook may have several of each.
            return "setting"
        case _:
            assert_never(item)


def check_setting(ctx: Context, item: nodes.OptionSetting, fields: dict[str, Any]) -> None:
    """Check one setting and record what it says in `fields` (the playbook model's fields)."""
    match item:
        case nodes.ScenarioSetting():
            fields["scenarios"] = tuple(n.text for n in item.ids)
        case nodes.ScopeSetting():
            fields["scope"] = scope(ctx, item.scope)
        case nodes.RepeatSetting():
            _repeat(ctx, item, fields)
        case nodes.ApplySetting():
            _choice(
                ctx,
                item.who,
                APPLY_TO,
                "apply_to_existing",
                fields,
                "apply to new|all members",
            )
        case nodes.MissedSetting():
            word = " ".join(n.text for n in item.words)
            if word in MISSED:
                fields["missed"] = MISSED[word]
            else:
                ctx.error(
                    "SOP112",
                    f"unknown missed-firing policy '{word}'",
                    item.span,
                    "write `missed skip` or `missed run latest`",
                )
        case nodes.ChangeSetting():
            _choice(ctx, item.mode, ON_CHANGE, "on_change", fields, "on change finish|migrate")
        case nodes.ActiveSetting():
            start, end = values.datetime(ctx, item.start), values.datetime(ctx, item.end)
            if start is not None and end is not None and end <= start:
                ctx.error("SOP306", "the playbook's active window ends before it starts", item.span)
            fields["active_from"], fields["active_until"] = start, end
        case nodes.VersionSetting() | nodes.AuthorSetting() | nodes.ReviewSetting():
            _metadata(ctx, item, fields)
        case _:
            assert_never(item)


def _metadata(
    ctx: Context,
    item: nodes.VersionSetting | nodes.AuthorSetting | nodes.ReviewSetting,
    fields: dict[str, Any],
) -> None:
    """`version`, `author`, `reviewed by`: shown in plans and logs, so each must say something."""
    if isinstance(item, nodes.VersionSetting):
        if _blank_or_multiline(ctx, item.version, "the version", 'write the revision, e.g. `version "1.2"`'):
            fields["version"] = item.version.value.strip()
        return
    if isinstance(item, nodes.AuthorSetting):
        if _blank_or_multiline(ctx, item.author, "the author", 'write who wrote it, e.g. `author "小美"`'):
            fields["author"] = item.author.value.strip()
        return
    names: list[str] = []
    for reviewer in item.reviewers:
        if _blank_or_multiline(
            ctx, reviewer, "a reviewer", 'write who reviewed it, e.g. `reviewed by "阿峰"`'
        ):
            name = reviewer.value.strip()
            if name in names:
                ctx.error("SOP117", f"'{name}' is named twice as a reviewer", reviewer.span)
            names.append(name)
    fields["reviewers"] = tuple(dict.fromkeys(names))


def _blank_or_multiline(ctx: Context, text: nodes.Str, what: str, hint: str) -> bool:
    """Whether a metadata string is usable: not empty and on one line (plans and logs show it)."""
    if not text.value.strip():
        ctx.error("SOP117", f"{what} is empty", text.span, hint)
        return False
    if "\n" in text.value:
        ctx.error("SOP117", f"{what} spans several lines", text.span, "write it on one line")
        return False
    return True


def review_check(ctx: Context, decl: nodes.PlaybookDecl, fields: dict[str, Any]) -> None:
    """A revision reviewed only by the person who wrote it has had no second pair of eyes."""
    author = fields.get("author")
    reviewers = fields.get("reviewers", ())
    if author is not None and reviewers and all(r == author for r in reviewers):
        span = next(i.span for i in decl.items if isinstance(i, nodes.ReviewSetting))
        ctx.warning(
            "SOP117",
            f"this playbook is reviewed only by its author '{author}'",
            span,
            "have someone else review it before it goes live, and name them here",
        )


def _choice(
    ctx: Context, word: nodes.Name, options: dict[str, Any], key: str, fields: dict[str, Any], form: str
) -> None:
    if word.text in options:
        fields[key] = options[word.text]
    else:
        ctx.error(
            "SOP112",
            f"unknown option '{word.text}'",
            word.span,
            did_you_mean(word.text, options) or f"write `{form}`",
        )


def _repeat(ctx: Context, item: nodes.RepeatSetting, fields: dict[str, Any]) -> None:
    match item.mode:
        case nodes.Repeat.ONCE | nodes.Repeat.ALWAYS:
            fields["repeat"] = item.mode
        case nodes.Repeat.COOLDOWN:
            if item.cooldown is not None:
                fields["repeat"] = model.Repeat.COOLDOWN
                fields["cooldown"] = values.duration(ctx, item.cooldown)
        case _:
            assert_never(item.mode)
