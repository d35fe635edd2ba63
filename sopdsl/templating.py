"""The one Jinja2 environment templates are checked and rendered with: sandboxed, strict, bounded.

Shared by the checker (syntax and variables) and the engine (rendering), so a template that
checks is rendered by exactly the same rules. Member-supplied text is passed as data, never
compiled as template code.

Jinja's sandbox stops a template from reaching Python internals; it does not stop it from
computing for minutes or filling memory (`{{ 'a' * 10**9 }}`). This environment bounds both,
and a template over a bound fails with `TemplateLimitError` (a `jinja2.TemplateError`) naming
the bound, before the expensive work is done:

- `MAX_OUTPUT`: the rendered text, and any one value printed, block captured or joined with
  `~`, is at most 64 KiB (65,536 characters); rendering stops as soon as it is over.
- `MAX_TEXT`: a text, list or tuple made by `*`, `+` or `%`, by a filter (`center`, `indent`,
  `replace`, `join`, `format`, ...) or by a text method (`ljust`, `replace`, ...) is at most
  64 KiB; a list's size counts its items and what they hold.
- `MAX_INT_BITS`: integers made by `*` and `**` have at most 4,096 bits (about 1,233 digits);
  `**` with an integer exponent over `MAX_EXPONENT` (4,096) is refused outright.
- `MAX_RANGE`: `range()` makes at most 10,000 numbers.
- `MAX_WORK`: one render does at most 100,000 units of work. Each loop item and each pass
  through a loop's or macro's body costs one unit per syntax node it runs; each call, filter
  and operator one more, plus one per 64 characters or 4 items it makes. A unit is a few microseconds
  at most, so a render stops within a fraction of a second; counting work rather than time keeps
  rendering deterministic (the engine reads no clock).

The operators are intercepted (`intercepted_binops`), so Jinja never folds them at compile time
either: `{{ 7**777777 }}` fails at render, fast, instead of hanging the compiler.

The bounds, the work budget and the checks live in `sopdsl.template_bounds`; this module holds
the environment that applies them, the metering of loops and macros, and `render`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping
from functools import cache
from typing import Any, cast

from jinja2 import Environment, StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sopdsl.template_bounds import (
    _BUDGET,
    _TEXT_METHODS,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_OUTPUT,
    MAX_RANGE,
    MAX_TEXT,
    MAX_WORK,
    TemplateLimitError,
    _Budget,
    _charge,
    _check_made,
    _check_size,
    _cost,
    _finalize,
    _guard_filter,
    _kib,
    _lipsum,
    _measure,
    binop,
    bounded_range,
)

# What other modules import from here, as before the bounds moved out.
__all__ = [
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_TEXT",
    "MAX_WORK",
    "BoundedCodeGenerator",
    "BoundedEnvironment",
    "BoundedTemplate",
    "TemplateLimitError",
    "binop",
    "bounded_range",
    "environment",
    "render",
]


@cache
def environment() -> BoundedEnvironment:
    """The sandboxed, bounded environment: undefined variables are errors, no autoescaping."""
    return BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(template: Template, context: Mapping[str, Any]) -> str:
    """`template.render(context)`, within the bounds: the work budget and the output size."""
    budget = _Budget(MAX_WORK)
    token = _BUDGET.set(budget)
    chunks = cast(
        "Generator[str, None, None]", template.root_render_func(template.new_context(dict(context)))
    )
    try:
        out: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"template output over {_kib(MAX_OUTPUT)}")
            out.append(chunk)
        return "".join(out)
    except TemplateLimitError:
        raise
    except RecursionError as exc:
        raise TemplateLimitError("template nests too deeply (macros or loops calling themselves)") from exc
    except (MemoryError, OverflowError) as exc:
        raise TemplateLimitError(f"template makes a value too large: {exc}") from exc
    except Exception:
        template.environment.handle_exception()  # re-raised, located in the template's text
    finally:
        chunks.close()  # a generator: stopped early on a limit
        _BUDGET.reset(token)


class BoundedTemplate(Template):
    """A template whose `render` goes through `render` above, whoever calls it."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        return render(self, dict(*args, **kwargs))


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with loops and macros metered (`_meter`) and `~` bounded."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:  # noqa: N802 - Jinja's visitor names
        _meter(node, self.environment)
        super().visit_Template(node, frame)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:  # noqa: N802
        # The meter's own calls (`_meter`) go straight to the environment, not through the
        # sandbox's `call`: they run once per loop item, and the sandbox would charge them too.
        if isinstance(node.node, nodes.EnvironmentAttribute) and node.node.name in _METER:
            self.write(f"environment.{node.node.name}(")
            for index, arg in enumerate(node.args):
                self.write(", " if index else "")
                self.visit(arg, frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.join_text((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with the operators, filters, calls, loops and output bounded."""

    intercepted_binops = frozenset(("*", "**", "+", "%"))
    code_generator_class = BoundedCodeGenerator
    template_class = BoundedTemplate

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = bounded_range
        self.globals["lipsum"] = _lipsum

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Blocks captured with `{% set %}`, macros and call blocks: at most `MAX_OUTPUT`."""
        out: list[str] = []
        size = 0
        for part in parts:
            size += len(part)
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"a block of the template is over {_kib(MAX_OUTPUT)}")
            out.append(part)
        return "".join(out)

    @staticmethod
    def join_text(parts: tuple[Any, ...]) -> str:
        """`a ~ b`: at most `MAX_OUTPUT`, measured before anything is turned into text."""
        _check_size(sum(_measure(part) for part in parts), "'~'", "")
        text = "".join(map(str, parts))
        _charge(1 + _cost(text))
        return text

    @staticmethod
    def counted(iterable: Iterable[Any], cost: int = 1) -> Iterator[Any]:
        """A loop's items, each charged `cost` units of work (its `if` test's size)."""
        for item in iterable:
            _charge(cost)
            yield item

    @staticmethod
    def charge(cost: int) -> None:
        """One pass through a loop's or a macro's body: `cost` units of work, its size."""
        _charge(cost)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """`obj[argument]`; falling back to a safe attribute, never to an unsafe one.

        Jinja's sandbox answers an unsafe fallback (`member[key]` with `key` a dict method's
        name or `_`-prefixed) with a security error; a key read from data is not an attack, so
        here it is simply undefined (an error all the same under `StrictUndefined`)."""
        try:
            return obj[argument]
        except (TypeError, LookupError):
            if isinstance(argument, str) and not argument.startswith("_"):
                try:
                    value = getattr(obj, argument)
                except AttributeError:
                    pass
                else:
                    if self.wrap_str_format(value) is None and self.is_safe_attribute(obj, argument, value):
                        return value
        return self.undefined(obj=obj, name=argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _charge(1)
        if isinstance(__obj, LoopContext) and args:
            args = (BoundedEnvironment.counted(args[0]), *args[1:])  # a recursive loop's `loop(x)`
        name = getattr(__obj, "__name__", "")
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(owner, str | bytes) and name in _TEXT_METHODS:
            args = _TEXT_METHODS[name](owner, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _check_made(result, f"'{name or 'call'}'")
        return result


_METER = frozenset(("charge", "counted"))


def _meter(tree: nodes.Template, environment: Environment) -> None:
    """Charge work where a template repeats itself: each loop item and each pass through a loop's
    or macro's body costs one unit per syntax node it runs, so work counted tracks time spent."""
    for node in list(tree.find_all((nodes.For, nodes.Macro, nodes.CallBlock))):
        assert isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock)
        body_cost = 1 + sum(1 for child in node.body for _ in child.find_all(nodes.Node)) + len(node.body)
        node.body.insert(0, _environment_call(environment, node, "charge", nodes.Const(body_cost)))
        if isinstance(node, nodes.For):
            test_cost = 1 + (sum(1 for _ in node.test.find_all(nodes.Node)) if node.test else 0)
            counted = _environment_call(environment, node, "counted", node.iter, nodes.Const(test_cost))
            node.iter = counted.node


def _environment_call(
    environment: Environment, where: nodes.Node, method: str, *args: nodes.Node
) -> nodes.ExprStmt:
    """`environment.<method>(*args)` as a statement, placed at `where`."""
    call = nodes.Call(nodes.EnvironmentAttribute(method), list(args), [], None, None)
    statement = nodes.ExprStmt(call)
    statement.set_lineno(where.lineno)
    statement.set_environment(environment)
    return statement
