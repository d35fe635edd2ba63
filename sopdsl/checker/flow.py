"""Flow analysis of a playbook: what each place provides (a member, a group, an event's fields,
coupons), which template variables it can serve, which tags a guard rules out (for the
protected-kick check) and which steps can end a flow or aim at the member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, assert_never

from sopdsl.checker import model
from sopdsl.checker.templates import field_span
from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import COUPON_FIELDS, EVENT_FIELDS, GROUP_FIELDS, MEMBER_FIELDS

if TYPE_CHECKING:
    from sopdsl.checker.context import Context
    from sopdsl.source import Span


@dataclass(frozen=True)
class Flow:
    """What a place in a playbook provides: a member, a group, an event's fields, coupons.
    `may_grant`: the playbook grants a coupon somewhere; `granted`: on every path to this place
    (templates read `{{ coupon.* }}` only then: the engine knows a coupon once it is granted).
    `calendar_entry`: the place is in a calendar entry, a flow of its own."""

    has_member: bool
    has_group: bool
    event_fields: dict[str, model.ValueType] | None
    may_grant: bool
    excluded: frozenset[str]
    where: str
    granted: bool = False
    calendar_entry: bool = False


def where_cap(flow: Flow) -> str:
    """The flow's description where a message starts with it (kept lower case, as every message is)."""
    return flow.where


# ---- what templates may use -----------------------------------------------------------------------


class _Problem(NamedTuple):
    """Why a place cannot serve a template variable. `in_text`: the template's own mistake (a
    field no member, group or coupon has, a root nothing provides), the same wherever it is sent."""

    message: str
    hint: str | None
    in_text: bool = False


def template_use(
    ctx: Context, text_vars: tuple[str, ...], flow: Flow, span: Span, what: str, written: Span | None = None
) -> None:
    """Report each variable of a template (or task text) that this place of the flow does not
    provide; variables with one problem (`coupon.title` and `coupon.worth` before any grant) once.

    `span` is the step; `written`, where the template's text is written, if in a playbook file.
    A mistake of the text itself is shown there, at the field, once however often it is sent."""
    problems: dict[_Problem, list[str]] = {}
    for path in text_vars:
        root, _, rest = path.partition(".")
        field = rest.split(".")[0] if rest else None
        problem = _provides(ctx, root, field, flow)
        if problem is not None:
            problems.setdefault(problem, []).append(path)
    for problem, paths in problems.items():
        uses = ", ".join(f"{{{{ {path} }}}}" for path in paths)
        at = span
        if problem.in_text and written is not None:
            at = field_span(ctx.loaded.sources.get(written.path), written, paths[0]) or span
        diagnostic = Diagnostic(
            "SOP202", Severity.ERROR, f"{what} uses {uses}, {problem.message}", at, problem.hint
        )
        if at is not span and diagnostic in ctx.diagnostics:
            continue  # sent again: the text's mistake is already shown where it is written
        ctx.diagnostics.append(diagnostic)


# A grant in another entry or in `do` looks like it came first, but the engine runs each calendar
# entry as a flow of its own, so moving it "above" is no help unless it is moved into this entry.
_ENTRY_GRANT_HINT = (
    "a calendar entry is a flow of its own: a `grant` in another entry or in `do` does not count "
    "here; grant in this entry before {}"
)


def coupon_missing(flow: Flow, then: str, doing: str, in_entry: str) -> tuple[str, str] | None:
    """Why this place cannot read `coupon.*` (a message and a hint), or None if a coupon is granted
    on every path to it. `then`: what would go wrong at run time; `doing`: what reads the coupon;
    `in_entry`: how to mend it in a calendar entry (after "grant in this entry before")."""
    if not flow.may_grant:
        return "but this playbook grants no coupon", f"grant the coupon before {doing}"
    if not flow.granted:
        return (
            f"but no coupon is granted before this step on every path to it, so {then}",
            _ENTRY_GRANT_HINT.format(in_entry)
            if flow.calendar_entry
            else "move the `grant` above this step (in this block, or before the block it is in)",
        )
    return None


def _provides(ctx: Context, root: str, field: str | None, flow: Flow) -> _Problem | None:
    roots = ["member", "group", "event", "coupon", "operator", "referrer", "now"]
    if root in ("member", "referrer"):
        if not flow.has_member:
            return _Problem(
                f"but {flow.where} has no member",
                "write `at CALENDAR for each member: ...` to send it to each member, "
                "or use a template without member fields",
            )
        known = [*MEMBER_FIELDS, *ctx.table("attribute"), *ctx.table("counter")]
        if field is not None and field not in known:
            return _Problem(f"but members have no field '{field}'", did_you_mean(field, known), True)
        return None
    if root == "group":
        if not flow.has_group:
            return _Problem("but a private chat has no group", None)
        if field is not None and field not in GROUP_FIELDS:
            return _Problem(
                f"but groups have no field '{field}'",
                did_you_mean(field, GROUP_FIELDS) or f"a group's fields: {', '.join(GROUP_FIELDS)}",
                True,
            )
        return None
    if root == "event":
        fields = flow.event_fields or {}
        if field is None or field not in fields:
            if not fields:
                return _Problem(f"but {flow.where} provides no event fields", _event_field_hint(field))
            have = ", ".join(sorted(fields))
            return _Problem(
                f"which {flow.where} never provides (event fields here: {have})",
                did_you_mean(field or "", fields) or _event_field_hint(field),
            )
        return None
    if root == "coupon":
        then = "every such send would fail with 'coupon' is undefined"
        instead = "the send, or write the coupon's title and worth into the text"
        missing = coupon_missing(flow, then, "sending this template", instead)
        if missing is not None:
            return _Problem(*missing)
        if field is not None and field not in COUPON_FIELDS:
            return _Problem(
                f"but coupons have no field '{field}'",
                did_you_mean(field, COUPON_FIELDS) or f"a coupon's fields: {', '.join(COUPON_FIELDS)}",
                True,
            )
        return None
    if root in ("operator", "now"):
        return None
    return _Problem(f"which no context provides (known: {', '.join(roots)})", did_you_mean(root, roots), True)


def template_text(ctx: Context, name: str) -> Span | None:
    """Where the declared template `name` has its text written (None: in a file of its own)."""
    symbol = ctx.table("template").get(name)
    if symbol is None:
        return None
    for file in ctx.loaded.files:
        if file.path != symbol.span.path:
            continue
        for decl in file.declarations:
            if isinstance(decl, nodes.TemplateDecl) and decl.name.span.start == symbol.span.start:
                return None if decl.from_file else decl.body.span
    return None


_TRIGGER_WORDS = {
    model.EventKind.JOIN: "on member joins",
    model.EventKind.MESSAGE: "on member posts",
    model.EventKind.ORDER: "on member orders",
    model.EventKind.INVITE: "on member invites",
    model.EventKind.REPORT: "on member is reported",
    model.EventKind.TAGGED: 'on member is tagged "..."',
    model.EventKind.UNTAGGED: 'on member is untagged "..."',
    model.EventKind.RENAME: "on member renames",
}


def _event_field_hint(field: str | None) -> str | None:
    """Where `event.FIELD` would come from, or the member field it was likely meant to be."""
    if field is None:
        return None
    if field in MEMBER_FIELDS:
        return f"did you mean {{{{ member.{field} }}}}?"
    sources = [word for kind, word in _TRIGGER_WORDS.items() if field in EVENT_FIELDS[kind]]
    if sources:
        return f"event.{field} exists only in a playbook started by `{sources[0]}`"
    return None


# ---- what a guard rules out -----------------------------------------------------------------------


def excluded(node: nodes.Cond) -> frozenset[str]:
    """Tags a condition guarantees the member does not have (for the protected-kick check)."""
    match node:
        case nodes.Paren():
            return excluded(node.inner)
        case nodes.Tagged():
            if node.subject is nodes.Subject.MEMBER and node.test is nodes.TagTest.NOT_TAGGED:
                return frozenset(s.value for s in node.tags)
            return frozenset()
        case nodes.Not():
            inner = node.operand.inner if isinstance(node.operand, nodes.Paren) else node.operand
            if (
                isinstance(inner, nodes.Tagged)
                and inner.subject is nodes.Subject.MEMBER
                and inner.test in (nodes.TagTest.TAGGED, nodes.TagTest.ANY)
            ):
                return frozenset(s.value for s in inner.tags)
            return frozenset()
        case nodes.And():
            return frozenset().union(*(excluded(c) for c in node.operands))
        case nodes.Or():
            sets = [excluded(c) for c in node.operands]
            return frozenset.intersection(*sets) if sets else frozenset()
        case (
            nodes.Compare()
            | nodes.StartsWith()
            | nodes.Matches()
            | nodes.InList()
            | nodes.IsSet()
            | nodes.WindowCount()
            | nodes.TimeBetween()
            | nodes.DateBetween()
            | nodes.DateIn()
            | nodes.WeekdayIn()
            | nodes.InStock()
            | nodes.BoolCond()
        ):
            # None of these says anything about the member's tags.
            return frozenset()
        case _:
            assert_never(node)


# ---- the shape of a flow --------------------------------------------------------------------------


def inner_blocks(step: nodes.Step) -> tuple[tuple[nodes.Step, ...], ...]:
    """The blocks of steps nested in a step: an `if`'s branches and `else`, a wait's or a task's
    `then` and `else`, a split's arms."""
    match step:
        case nodes.If():
            return (*(b.body for b in step.branches), step.otherwise or ())
        case nodes.WaitFor() | nodes.Assign():
            return (step.then or (), step.otherwise or ())
        case nodes.Split():
            return tuple(a.body for a in step.arms)
        case nodes.ActionNode() | nodes.Wait() | nodes.Stop():
            return ()
        case _:
            assert_never(step)


def any_step(decl: nodes.PlaybookDecl, kind: type) -> bool:
    """Whether the playbook has a step of `kind` anywhere, at any depth (e.g. whether it grants)."""
    stack: list[nodes.Step] = [
        s for item in decl.items if isinstance(item, nodes.DoSetting | nodes.AtEntry) for s in item.steps
    ]
    while stack:
        step = stack.pop()
        if isinstance(step, kind):
            return True
        stack.extend(s for block in inner_blocks(step) for s in block)
    return False


def grants_after(step: nodes.Step, before: bool) -> bool:
    """Whether a coupon is granted on every path once `step` has run (`before`: it was already):
    a `grant`, or a step each of whose paths grants (an `if` with an `else`, a wait's `then` and
    `else`, every arm of a split)."""
    if before or isinstance(step, nodes.Grant):
        return True
    match step:
        case nodes.If():
            if step.otherwise is None:
                return False
        case nodes.WaitFor() | nodes.Assign() | nodes.Split():
            pass
        case _:
            return False
    return all(_block_grants(block) for block in inner_blocks(step))


def _block_grants(steps: tuple[nodes.Step, ...]) -> bool:
    granted = False
    for step in steps:
        granted = grants_after(step, granted)
    return granted


def always_stops(step: nodes.Step) -> bool:
    """Whether a step ends the flow on every path: an `if` with an `else` whose every branch ends so."""
    if isinstance(step, nodes.If) and step.otherwise is not None:
        return all(_ends(b.body) for b in step.branches) and _ends(step.otherwise)
    return False


def _ends(steps: tuple[nodes.Step, ...]) -> bool:
    return bool(steps) and (isinstance(steps[-1], nodes.Stop) or always_stops(steps[-1]))


def aims_at_member(step: nodes.Step) -> bool:
    """Whether a step needs the member still in the group (so a `kick` before it makes it unreachable)."""
    match step:
        case nodes.ActionNode():
            return step.aims_at_member
        case nodes.WaitFor():
            return True
        case nodes.Assign() | nodes.Wait() | nodes.If() | nodes.Split() | nodes.Stop():
            return False
        case _:
            assert_never(step)
