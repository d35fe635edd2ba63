"""The bounds templates run within: limits, the work budget, checks on operators, filters, text methods."""

from __future__ import annotations

import inspect
import operator
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from string import Formatter
from typing import Any

from jinja2 import TemplateError
from jinja2.runtime import Undefined
from jinja2.utils import generate_lorem_ipsum

MAX_OUTPUT = 64 * 1024
MAX_TEXT = 64 * 1024
MAX_INT_BITS = 4096
MAX_EXPONENT = 4096
MAX_RANGE = 10_000
MAX_WORK = 100_000


class TemplateLimitError(TemplateError):
    """A template went over one of the bounds above; the message names the bound."""


def binop(op: str, left: Any, right: Any) -> Any:
    """`left op right` for an intercepted operator, refused before it would go over a bound."""
    _charge(1)
    if op == "**":
        _check_power(left, right)
    elif op == "*":
        _check_times(left, right)
    elif op == "+":
        if isinstance(left, str | bytes | list | tuple) and type(left) is type(right):
            _check_size(_measure(left) + _measure(right), "'+'", left)
    elif op == "%" and isinstance(left, str):
        _check_percent(left, right, "'%'")
    try:
        result = _BINOPS[op](left, right)
    except OverflowError as exc:
        raise TemplateLimitError(f"'{op}' makes a number too large ({exc})") from exc
    _charge(_cost(result))
    return result


@dataclass(slots=True)
class _Budget:
    left: int


_BUDGET: ContextVar[_Budget | None] = ContextVar("sopdsl_template_budget", default=None)

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
}


def _kib(size: int) -> str:
    return f"{size // 1024} KiB"


def _charge(units: int) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return  # checking or compiling: the size bounds hold, the work budget is per render
    budget.left -= units
    if budget.left < 0:
        raise TemplateLimitError(
            f"template does over {MAX_WORK:,} units of work (loop iterations, calls and text made)"
        )


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def _cost(made: Any) -> int:
    """The work of making `made`: text is copied fast (a unit per 64 characters), items of lists
    and dicts less so (a unit per 4)."""
    if isinstance(made, str | bytes):
        return len(made) // 64
    return _length(made) // 4


def _measure(value: Any, cap: int = MAX_TEXT) -> int:
    """About how many characters `value` is as text: items and what they hold, counted.

    Stops counting once over `cap`, so measuring is cheap however large (or shared) the value."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 1
        if total > cap:
            return total
    return total


def _what(value: Any) -> str:
    return "a text" if isinstance(value, str | bytes) else "a value"


def _check_size(size: int, what: str, sample: Any) -> None:
    if size > MAX_TEXT:
        raise TemplateLimitError(f"{what} would make {_what(sample)} over {_kib(MAX_TEXT)}")


def _check_made(result: Any, what: str) -> None:
    """After a filter or call: a text over the bound is refused; everything is charged."""
    size = _length(result)
    if isinstance(result, str | bytes) and size > MAX_TEXT:
        raise TemplateLimitError(f"{what} made a text over {_kib(MAX_TEXT)}")
    _charge(_cost(result))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if not _is_int(exponent) or not isinstance(base, int | float):
        return
    if exponent > MAX_EXPONENT:
        raise TemplateLimitError(f"'**' with an exponent over {MAX_EXPONENT}")
    if isinstance(base, int) and exponent > 0 and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise TemplateLimitError(f"'**' would make a number over {MAX_INT_BITS} bits")


def _check_times(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise TemplateLimitError(f"'*' would make a number over {MAX_INT_BITS} bits")
        return
    sequence, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sequence, str | bytes | list | tuple) and isinstance(count, int) and count > 0:
        if _measure(sequence, MAX_TEXT // count + 1) * count > MAX_TEXT:
            kind = "a text" if isinstance(sequence, str | bytes) else "a list"
            raise TemplateLimitError(f"'*' would make {kind} over {_kib(MAX_TEXT)}")


# A %-conversion: `%(key)-08.3f`, with the key, flags, width and precision it may have.
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<kind>.)?"
)


def _check_percent(text: str, values: Any, what: str) -> None:
    """`text % values`: refused if its widths or what it repeats would go over `MAX_TEXT`."""
    size = len(text)
    positional = iter(values if isinstance(values, tuple) else (values,))
    for match in _PERCENT.finditer(text):
        width, precision = match.group("width") or "", match.group("prec") or ""
        if "*" in (width, precision):
            raise TemplateLimitError(f"{what} with a '*' width")
        if len(width) > 6 or len(precision) > 6 or int(width or 0) + int(precision or 0) > MAX_TEXT:
            raise TemplateLimitError(f"{what} with a width over {MAX_TEXT}")
        size += int(width or 0) + int(precision or 0)
        if match.group("kind") == "%":
            continue
        key = match.group("key")
        if key is not None:
            value = values.get(key) if isinstance(values, Mapping) else None
        else:
            value = next(positional, None)
        size += _measure(value)
        if size > MAX_TEXT:
            raise TemplateLimitError(f"{what} would make a text over {_kib(MAX_TEXT)}")


def _check_format(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    """`text.format(...)`: refused if its widths or the values it repeats would go over `MAX_TEXT`."""
    each = sum(_measure(v) for v in args) + sum(_measure(v) for v in kwargs.values())
    size = len(text)
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return  # Python will say what is wrong with it
    for _literal, field, spec, _conversion in fields:
        if field is None:
            continue
        if spec and "{" in spec:
            raise TemplateLimitError(f"{what} with a nested '{{...}}' width")
        widths = [int(n) for n in re.findall(r"\d+", spec or "")]
        if any(n > MAX_TEXT for n in widths):
            raise TemplateLimitError(f"{what} with a width over {MAX_TEXT}")
        size += sum(widths) + each
        if size > MAX_TEXT:
            raise TemplateLimitError(f"{what} would make a text over {_kib(MAX_TEXT)}")


def _width_method(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    width = args[0] if args else kwargs.get("width", 0)
    if isinstance(width, int) and width > MAX_TEXT:
        raise TemplateLimitError(f"a text padded to over {MAX_TEXT} characters")
    return args


def _expandtabs(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    size = args[0] if args else kwargs.get("tabsize", 8)
    tabs = owner.count("\t" if isinstance(owner, str) else b"\t")  # type: ignore[arg-type]
    if isinstance(size, int) and len(owner) + tabs * max(size, 0) > MAX_TEXT:
        raise TemplateLimitError(f"'expandtabs' would make a text over {_kib(MAX_TEXT)}")
    return args


def _replace(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) >= 2 and isinstance(args[0], type(owner)) and isinstance(args[1], type(owner)):
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _check_replace(owner, args[0], args[1], count)
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    found = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * max(len(new) - len(old), 0) > MAX_TEXT:
        raise TemplateLimitError(f"'replace' would make a text over {_kib(MAX_TEXT)}")


def _join(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args:
        return args
    items = list(args[0])
    _check_size(len(owner) * len(items) + sum(_measure(item) for item in items), "'join'", owner)
    return (items, *args[1:])


def _translate(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    table = args[0] if args else kwargs.get("table")
    if isinstance(table, Mapping):
        longest = max((_measure(v) for v in table.values()), default=1)
        _check_size(len(owner) * max(longest, 1), "'translate'", owner)
    return args


def _format_method(owner: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if isinstance(owner, str):
        mapping = args[0] if args and isinstance(args[0], Mapping) else kwargs
        _check_format(owner, args, mapping, "'format'")
    return args


_TEXT_METHODS: dict[str, Callable[[str | bytes, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    "center": _width_method,
    "ljust": _width_method,
    "rjust": _width_method,
    "zfill": _width_method,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
    "translate": _translate,
    "format": _format_method,
    "format_map": _format_method,
}


def bounded_range(*args: int) -> range:
    """`range()` in templates: at most `MAX_RANGE` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"range() of over {MAX_RANGE:,} numbers")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n * max > 2_000:
        raise TemplateLimitError("lipsum() of over 2,000 words")
    return str(generate_lorem_ipsum(n, html, min, max))


def _finalize(value: Any) -> Any:
    """Every value a template prints: measured before it is turned into text."""
    if _measure(value, MAX_OUTPUT) > MAX_OUTPUT:
        raise TemplateLimitError(f"a value printed is over {_kib(MAX_OUTPUT)}")
    return plain_number(value)


def plain_number(value: Any) -> Any:
    """A whole float as the int a user writes (`价值30元`, not `30.0`); anything else as it is.
    Counters and amounts are floats inside, but `30` is what the playbook said."""
    if type(value) is float and value.is_integer() and abs(value) < 1e16:
        return int(value)
    return value


# Filters that read a sequence item by item, or numbers: they do not turn the whole value into
# text, so a large list is fine for them. Every other filter's value must be text-sized.
_ITEMWISE_FILTERS = frozenset(
    "length count first last random sum min max sort unique reverse list batch slice map select "
    "reject selectattr rejectattr groupby dictsort items default d attr abs int float round join "
    "filesizeformat".split()
)


# Filters whose other arguments say how large their result is: their arguments are bound by
# name and checked before they run (`_filter_check`).
_SIZED_FILTERS = frozenset("center indent wordwrap replace format truncate batch slice join".split())


def _filter_check(name: str, a: Mapping[str, Any]) -> None:
    """Refuse, before calling it, a filter whose result would go over `MAX_TEXT`."""
    value = a.get("value", a.get("s"))
    if name == "center" and isinstance(a.get("width"), int) and a["width"] > MAX_TEXT:
        raise TemplateLimitError(f"'center' to over {MAX_TEXT} characters")
    elif name == "indent":
        width = a.get("width", 4)
        size = width if isinstance(width, int) else len(str(width))
        _check_size(_measure(value) + (str(value).count("\n") + 1) * max(size, 0), "'indent'", "")
    elif name == "wordwrap":
        wrap = a.get("wrapstring") or "\n"
        _check_size(_measure(value) * (1 + len(str(wrap))), "'wordwrap'", "")
    elif name == "replace":
        _check_replace(str(value), str(a.get("old", "")), str(a.get("new", "")), a.get("count"))
    elif name == "format":
        _check_percent(str(value), a.get("kwargs") or a.get("args", ()), "the 'format' filter")
    elif name == "truncate":
        _check_size(_measure(a.get("end", "")), "'truncate'", "")
    elif name in ("batch", "slice"):
        count = a.get("linecount", a.get("slices"))
        if (
            isinstance(count, int)
            and count > MAX_RANGE
            and (name == "slice" or a.get("fill_with") is not None)
        ):
            raise TemplateLimitError(f"'{name}' of over {MAX_RANGE:,}")


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, checked before it runs (`_filter_check`) and after (`_check_made`)."""
    first = 1 if hasattr(function, "jinja_pass_arg") else 0  # after Jinja's context, if it takes one
    itemwise = name in _ITEMWISE_FILTERS
    signature = inspect.signature(function) if name in _SIZED_FILTERS else None

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _charge(1)
        if not itemwise and len(args) > first:
            _check_size(_measure(args[first]), f"the '{name}' filter on a value", "")
        if signature is not None:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return function(*args, **kwargs)  # Jinja says what is wrong with the arguments
            bound.apply_defaults()
            arguments = bound.arguments
            if name == "join":
                _bounded_join(arguments)
                args, kwargs = bound.args, bound.kwargs
            else:
                _filter_check(name, arguments)
        result = function(*args, **kwargs)
        _check_made(result, f"the '{name}' filter")
        return result

    return guarded


def _bounded_join(arguments: dict[str, Any]) -> None:
    """The `join` filter's items, listed and measured (with the separators) before joining."""
    value = arguments.get("value")
    if value is None or isinstance(value, Undefined) or arguments.get("attribute") is not None:
        return  # joined attributes are measured when made (`_check_made`)
    items = list(value)
    separator = _measure(arguments.get("d", ""))
    _check_size(separator * len(items) + sum(_measure(item) for item in items), "'join'", "")
    arguments["value"] = items
