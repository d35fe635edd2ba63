"""Message text: the template context of a flow, and rendering (a fast path for plain fields)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from jinja2 import Template, TemplateError

from sopdsl import lang
from sopdsl.engine.parts import _Parts
from sopdsl.engine.plain import Part, plain_parts
from sopdsl.engine.state import Flow, GroupState, MemberState
from sopdsl.enums import ValueType
from sopdsl.kinds import BUILTIN_COUNTERS, GROUP_FIELDS, MEMBER_TEXT_FIELDS
from sopdsl.plan import Declarations, Plan, TemplateField, timeutil
from sopdsl.template_bounds import plain_number
from sopdsl.templating import environment
from sopdsl.templating import render as render_template


class _Rendering(_Parts):
    """Message text: the template context of a flow, and rendering (a fast path for plain fields)."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _context(self, flow: Flow, member: MemberState | None, group: GroupState | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "now": timeutil.aware(self.now, group.zone if group else self.zone).strftime("%Y-%m-%d %H:%M")
        }
        if member is not None:
            # The attributes and counters the flow's own plan version declares (a flow finishing
            # on an earlier version still reads what that version declared).
            program = self.compiled[flow.playbook].program
            context["member"] = self._member_context(member, program)
            referrer = self.members.get(member.referrer) if member.referrer else None
            context["referrer"] = (
                self._member_context(referrer, program) if referrer else {"name": "", "id": ""}
            )
        if group is not None:
            context["group"] = group.as_context()
        context["event"] = dict(flow.event)
        context["operator"] = {"name": group.operator if group and group.operator else ""}
        if flow.coupon is not None:
            expires = flow.coupon.get("expires_at")
            if isinstance(expires, int):
                tz = group.zone if group is not None else self.zone
                flow.coupon["expires_at"] = timeutil.aware(expires, tz).strftime("%Y-%m-%d %H:%M")
            context["coupon"] = flow.coupon
        return context

    def _member_context(self, member: MemberState, program: Declarations) -> dict[str, Any]:
        data = member.as_context()
        for name in program.attributes:
            data.setdefault(name, "")
        for name in program.counters:
            data.setdefault(name, 0)
        return data

    def _ref_value(
        self, ref: lang.Ref, flow: Flow, member: MemberState | None, group: GroupState | None
    ) -> Any:
        """A reference's value where a step reads it (arguments, `set`): event, member, referrer or group."""
        if ref.root == "event":
            return flow.event.get(ref.field)
        if ref.root == "group":
            return group.field_value(ref.field) if group is not None else None
        holder = member
        if ref.root == "referrer":
            holder = self.members.get(member.referrer) if member is not None and member.referrer else None
        if holder is None:
            return None
        value = holder.field_value(ref.field)
        if value is None and ref.field in self._counter_names:
            return 0
        return value

    def _coupon_value(self, read: lang.CouponField, flow: Flow, group: GroupState | None) -> Any:
        """A field of the coupon the flow granted, where `set` reads it: `expires_at` as its local
        day, as a message shows it (None if it never expires). LookupError: no grant went out."""
        if flow.coupon is None:
            raise LookupError("no coupon was granted in this flow (its grant did not go out)")
        value = flow.coupon.get(read.field)
        if read.field != "expires_at":
            return value
        if isinstance(value, int):
            return timeutil.local(value, group.zone if group is not None else self.zone).date()
        # "" for a coupon without `valid for`; "YYYY-MM-DD HH:MM" once a message quoted it (`_context`)
        return dt.date.fromisoformat(value[:10]) if value else None

    def _render(
        self,
        source: str,
        parts: tuple[Part, ...] | None,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> str:
        """The template's text for this flow, or `RenderError` naming what went wrong in it."""
        if parts is not None:
            # Plain `{{ root.field }}` substitutions: read only the fields used, the way the
            # Jinja context would hold them; anything unusual goes through Jinja below.
            out: list[str] = []
            context: dict[str, Any] | None = None
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                root, attr = part
                if root == "member" and member is not None:
                    value = self._member_value(member, attr, self.compiled[flow.playbook].program)
                elif root == "group" and group is not None:
                    value = _group_value(group, attr)
                else:
                    if context is None:
                        context = self._context(flow, member, group)
                    holder = context.get(root, _MISSING)
                    value = holder.get(attr, _MISSING) if isinstance(holder, dict) else _MISSING
                if value is _MISSING:
                    break
                out.append(str(plain_number(value)))  # as Jinja's `finalize` prints it
            else:
                return "".join(out).strip()
        context = self._context(flow, member, group)
        template = compiled_template(source)  # its RenderError says "template error" already
        try:
            return render_template(template, context).strip()
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:
            # Raised by the template's own expressions over member data (`1/0`, `name + 1`): only
            # the template and the values it reads run inside `render`, so this is the user's error.
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from exc

    def _member_value(self, member: MemberState, name: str, program: Declarations) -> Any:
        """`member.<name>` as the template context has it (see `_context`), or `_MISSING`."""
        if name in member.attributes:
            return member.attributes[name]
        if name in member.counters:
            return member.counters[name]
        if name in _MEMBER_FIELDS:
            return getattr(member, name)
        if name == "tags":
            return sorted(member.tags)
        if name in _DEFAULT_COUNTERS:
            return 0
        if name in program.attributes:
            return ""
        if name in program.counters:
            return 0
        return _MISSING

    def _render_text(
        self,
        source: str,
        parts: tuple[str | TemplateField, ...] | None,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> tuple[str, str | None]:
        """A task's text, or its source and why it could not be rendered."""
        try:
            return self._render(source, plain_parts(parts), flow, member, group), None
        except RenderError as exc:
            return source, str(exc)


class RenderError(Exception):
    """A template failed for one action: the message names the error, for the action's reason."""


def _plain(value: Any) -> bool:
    """Whether a value can go to an executor as JSON as it is."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


_TEMPLATES: Final[dict[str, Template]] = {}
_MISSING: Final = object()
# From the registry of kinds: what `member.X` and `group.X` read in a template.
_MEMBER_FIELDS: Final = frozenset(MEMBER_TEXT_FIELDS)
_DEFAULT_COUNTERS: Final = frozenset(BUILTIN_COUNTERS)
_GROUP_FIELDS: Final = frozenset(name for name, kind in GROUP_FIELDS.items() if kind is ValueType.TEXT)


def _group_value(group: GroupState, name: str) -> Any:
    """`group.<name>` as `GroupState.as_context` has it, or `_MISSING`."""
    if name in _GROUP_FIELDS:
        return getattr(group, name)
    if name == "size":
        return len(group.members)
    if name == "tags":
        return sorted(group.tags)
    return _MISSING


def prepare_templates(plan: Plan) -> None:
    """Compile the plan's templates that are not plain parts, once, when the engine loads it; one
    that fails to compile is left to fail its own sends, named, as it would at render."""
    sources = [t.source for t in plan.declarations.templates.values() if t.parts is None]
    for compiled in plan.playbooks:
        for code in (compiled.code, *(entry.code for entry in compiled.schedule)):
            sources.extend(i.text for i in code if i.text is not None and i.parts is None)
    for source in sources:
        try:
            compiled_template(source)
        except RenderError:
            pass


def compiled_template(source: str) -> Template:
    """The Jinja template of a source that is not plain parts, compiled once per process (the
    engine compiles a plan's when it loads it, so no event waits for Jinja's parser)."""
    found = _TEMPLATES.get(source)
    if found is None:
        try:
            found = environment().from_string(source)
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:
            # Jinja folds constants while compiling: `{{ 7**777777 }}` fails here, not in render.
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from exc
        _TEMPLATES[source] = found
    return found
