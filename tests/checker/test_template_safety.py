"""Templates cannot exhaust memory or time, and cannot reach past their data (issue 9, item 6).

Rendering is bounded (`sopdsl.templating`): operators, filters, text methods, loops and output
stop with a `TemplateLimitError` naming the bound, fast. Checking walks the template's syntax
tree: `_` names, internal attributes, methods that change data and `format` are SOP204; constant
expressions over a bound are SOP205. The property at the end: whatever passes the checker
renders without a sandbox security error, and within the bounds.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sopdsl.checker import CheckResult, check_program
from sopdsl.engine.rendering import compiled_template
from sopdsl.syntax.loader import load_text
from sopdsl.templating import MAX_OUTPUT, TemplateLimitError, environment, render

FAST = 1.0  # seconds: every refused template is refused well within this, even on a busy machine

CONTEXT: dict[str, Any] = {
    "now": "2026-12-05 10:00",
    "member": {
        "id": "m1",
        "name": "小明",
        "nickname": "明明",
        "tags": ["新人", "vip"],
        "points": 42,
        "messages": 3,
        "city": "杭州",
    },
    "group": {
        "id": "g1",
        "name": "杭州宝妈群",
        "size": 2,
        "tags": ["活跃"],
        "members": [{"name": "小明", "points": 42}, {"name": "小红", "points": 7}],
    },
    # Event data is member-supplied: it may hold anything, including what an attacker would write.
    "event": {"kind": "__class__", "text": "{0.__class__}", "method": "pop", "fmt": "%s", "n": 3},
}


def render_text(source: str, context: dict[str, Any] | None = None) -> str:
    """What the engine does: compile once, render with the bounds."""
    return render(compiled_template(source), CONTEXT if context is None else context)


def refused_fast(source: str) -> str:
    """Render `source`, expecting a bound to stop it quickly; the error's message."""
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError) as caught:
        render_text(source)
    assert time.perf_counter() - started < FAST, source
    assert isinstance(caught.value, TemplateError)
    return str(caught.value)


def check_template(text: str) -> CheckResult:
    return check_program(load_text(f'timezone "Asia/Shanghai"\ntemplate t = "{text}"\n', "t.sop"))


def codes(result: CheckResult) -> list[str]:
    return [d.code for d in result.diagnostics if d.is_error]


# ---- rendering is bounded ---------------------------------------------------------------------


def test_repeating_a_text_a_billion_times_fails_fast_naming_the_bound() -> None:
    assert refused_fast("{{ 'a' * 10**9 }}") == "'*' would make a text over 64 KiB"


def test_a_huge_power_fails_fast_at_compile_and_render() -> None:
    started = time.perf_counter()
    template = environment().from_string("{{ 7**777777 }}")  # Jinja used to fold this, for minutes
    assert time.perf_counter() - started < FAST
    with pytest.raises(TemplateLimitError, match=r"'\*\*' with an exponent over 4096"):
        render(template, CONTEXT)
    assert refused_fast("{{ 7**777777 }}").startswith("'**'")


def test_template_render_itself_is_bounded() -> None:
    """Any `.render()` of a template from this environment goes through the bounds."""
    with pytest.raises(TemplateLimitError):
        environment().from_string("{{ 'ab' * 10**8 }}").render(CONTEXT)


def test_output_stops_at_64_kib() -> None:
    message = refused_fast("{% for i in range(10000) %}{{ member.name }}一二三四五六七八九十{% endfor %}")
    assert message == "template output over 64 KiB"
    # Just under the bound is fine.
    text = render_text("{% for i in range(6000) %}0123456789{% endfor %}")
    assert len(text) == 60000 <= MAX_OUTPUT


def test_loops_that_print_nothing_still_stop() -> None:
    message = refused_fast("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
    assert "units of work" in message


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{{ 'a'|center(10**9) }}", "65536"),
        ("{{ ('a' * 60000)|replace('a', 'aa') }}", "'replace'"),
        ("{{ 'x'.ljust(10**9) }}", "65536"),
        ("{{ '%0999999999d' % 1 }}", "width over"),
        ("{{ '%0999999999d'|format(1) }}", "width over"),
        ("{{ range(10000)|map('center', 60000)|join }}", "units of work"),
        ("{{ [['a' * 60000]] * 60000 }}", "'*' would make a list"),
        ("{{ (['a' * 60000] * 1)|join * 2 }}", "'*' would make a text"),
        ("{{ 2**4000 * 2**4000 }}", "4096 bits"),
        ("{{ 4**3000 }}", "4096 bits"),
        ("{{ 2.0 ** 100000 }}", "exponent over"),
        ("{{ range(10**6)|list|length }}", "range() of over 10,000"),
        ("{{ lipsum(10**6) }}", "lipsum()"),
        ("{{ '%(a)s%(a)s%(a)s' % {'a': 'x' * 30000} }}", "'%' would make a text"),
        ("{{ '\t'.expandtabs(10**9) }}", "'expandtabs'"),
        ("{{ ('x' * 9)|indent(10**9, true) }}", "'indent'"),
        ("{{ [1]|batch(10**9, 0)|list }}", "'batch'"),
        ("{{ member.name ~ 'a' * 60000 ~ 'b' * 60000 }}", "'~'"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~'",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "'+'",
        ),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "nests too deeply"),
        ("{% set x %}{% for i in range(10000) %}0123456789{% endfor %}{% endset %}.", "block"),
        (
            "{% for x in range(200) recursive %}{% if loop.depth < 4 %}{{ loop(range(200)) }}{% endif %}{% endfor %}",
            "units of work",
        ),
    ],
)
def test_every_way_to_grow_a_value_is_bounded(source: str, bound: str) -> None:
    assert bound in refused_fast(source)


def test_ordinary_templates_render_as_jinja_renders_them() -> None:
    plain = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    for source in [
        "你好 {{ member.name }}，你有 {{ member.points }} 积分",
        "{{ 7*7 }} {{ '=' * 20 }} {{ 2**64 }} {{ 10 % 3 }} {{ '%s/%s' % (1, 2) }} {{ [1] + [2] }}",
        "{{ member.tags|join('、') }} {{ group.members|map(attribute='name')|join(',') }}",
        "{% for m in group.members|sort(attribute='points') %}{{ loop.index }}.{{ m.name }} {% endfor %}",
        "{{ '%.1f'|format(member.points) }} {{ member.name|center(10) }} {{ 'a b'|replace(' ', '_') }}",
        "{{ member.name ~ '!' }} {{ range(3)|list }} {{ member.items()|list|length }}",
        "{% for x in [[1, [2]], [3]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}",
    ]:
        assert render_text(source) == plain.from_string(source).render(CONTEXT), source


# ---- checking rejects escapes and over-bound constants -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ member|attr('__class__') }}",
        "{{ '{0.__class__}'.format(member) }}",
        "{{ member.name.format_map(member) }}",
        "{{ member['__class__'] }}",
        "{{ member.__class__ }}",  # the one-line fast path of the checker, too
        "{{ member.tags.pop() }}",
        "{{ member.update }}",
        "{{ member|attr(event.kind) }}",
        "{{ group.members|map('attr', '__dict__')|list }}",
        "{{ group.members|sort(attribute='name.__class__') }}",
        "{{ group.members|sum(attribute='_x') }}",
        "{{ group.members|selectattr('__class__')|list }}",
        "{% for x in ''.__class__.__mro__ %}{{ x }}{% endfor %}",
    ],
)
def test_escape_forms_are_check_errors(text: str) -> None:
    result = check_template(text)
    assert "SOP204" in codes(result), result.diagnostics
    assert all(d.span.line == 2 for d in result.diagnostics)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ 'a' * 10**9 }}", "'*' would make a text over 64 KiB"),
        ("{{ 7**777777 }}", "'**' with an exponent over 4096"),
        ("{{ member.name ~ ('x' * 70000) }}", "'*' would make a text over 64 KiB"),
        ("{{ [0] * 10**9 }}", "'*' would make a list over 64 KiB"),
        ("{{ (2**64) ** 100 }}", "4096 bits"),
    ],
)
def test_constants_over_a_bound_are_check_errors_found_fast(text: str, message: str) -> None:
    started = time.perf_counter()
    result = check_template(text)
    assert time.perf_counter() - started < FAST
    assert codes(result) == ["SOP205"]
    assert message in result.diagnostics[0].message


def test_check_through_the_cli_has_no_traceback(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from sopdsl.cli import main

    path = tmp_path / "t.sop"
    path.write_text(
        'timezone "Asia/Shanghai"\n'
        "template a = \"{{ 'a' * 10**9 }}\"\n"
        'template b = "{{ 7**777777 }}"\n'
        "template c = \"{{ member|attr('__class__') }}\"\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["check", str(path)])
    assert time.perf_counter() - started < 5
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.count("error[SOP205]") == 2 and result.output.count("error[SOP204]") == 1


def test_ordinary_templates_check_clean() -> None:
    for text in [
        "{{ 7*7 }} {{ member.name }} {{ '%.1f'|format(member.points) }}",
        "{{ member['name'] }} {{ member.items()|list|length }} {{ group.members|map(attribute='name')|join }}",
        "{{ member.pop_count }} {{ member.name.upper() }} {{ event[event.kind] }}",
    ]:
        assert codes(check_template(text)) == [], text


# ---- the property --------------------------------------------------------------------------------

# Mostly what templates really read, and now and then what an escape would try.
_SAFE_ATTRIBUTES = st.sampled_from("name tags points members size items keys upper title real".split())
_UNSAFE_ATTRIBUTES = st.sampled_from(
    "format format_map __class__ __mro__ __subclasses__ __globals__ _x mro pop update append "
    "gi_frame __dict__ __init__".split()
)
_ATTRIBUTES = st.one_of(*[_SAFE_ATTRIBUTES] * 5, _UNSAFE_ATTRIBUTES)
_SAFE_TEXTS = st.sampled_from(["a", "名", "name", "points", "tags", "%s", "%(name)s", ", "])
_UNSAFE_TEXTS = st.sampled_from(["_", "__class__", "_x.name", "name._y", "{0.__class__}", "format", "pop"])
_TEXTS = st.one_of(*[_SAFE_TEXTS] * 5, _UNSAFE_TEXTS)
_NUMBERS = st.sampled_from([0, 1, 2, 3, 9, 64, 777, 4096, 65536, 777777, 10**6])


def _quoted(text: str) -> str:
    return "'" + text + "'"


_LEAVES = st.one_of(
    st.sampled_from(["member", "group", "event", "member.tags", "group.members", "range(5)"]),
    _NUMBERS.map(str),
    _TEXTS.map(_quoted),
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    filters = st.sampled_from(
        [
            "attr({t})",
            "map(attribute={t})",
            "map('attr', {t})",
            "sort(attribute={t})",
            "sum(attribute={t})",
            "selectattr({t})",
            "join({t})",
            "format({x})",
            "replace({t}, {x})",
            "center({n})",
            "string",
            "list",
            "length",
            "first",
            "upper",
            "attr({x})",
        ]
    )
    operators = st.sampled_from(["*", "**", "+", "%", "~", "-"])
    return st.one_of(
        st.tuples(inner, _ATTRIBUTES).map(lambda p: f"{p[0]}.{p[1]}"),
        st.tuples(inner, _TEXTS).map(lambda p: f"{p[0]}[{_quoted(p[1])}]"),
        st.tuples(inner, inner).map(lambda p: f"{p[0]}[{p[1]}]"),
        st.tuples(inner, filters, _TEXTS, inner, _NUMBERS).map(
            lambda p: f"(({p[0]})|" + p[1].format(t=_quoted(p[2]), x=p[3], n=p[4]) + ")"
        ),
        st.tuples(inner, st.lists(inner, max_size=2)).map(lambda p: f"{p[0]}({', '.join(p[1])})"),
        st.tuples(inner, _ATTRIBUTES, inner).map(lambda p: f"{p[0]}.{p[1]}({p[2]})"),  # .format(x)
        st.tuples(inner, operators, inner).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
    )


_EXPRESSIONS = st.recursive(_LEAVES, _compound, max_leaves=5)
_TEMPLATES = st.one_of(
    _EXPRESSIONS.map(lambda e: "{{ " + e + " }}"),
    _EXPRESSIONS.map(lambda e: "{% for x in " + e + " %}{{ x }}{% endfor %}"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEMPLATES)
def test_whatever_passes_check_renders_without_a_security_error(text: str) -> None:
    result = check_template(text)
    errors = codes(result)
    # SOP409: arithmetic that mixes text in (`'a' - 1`), which could only fail when rendered.
    assert set(errors) <= {"SOP201", "SOP204", "SOP205", "SOP409"}, result.diagnostics
    if errors:
        return
    started = time.perf_counter()
    try:
        out = render_text(text)
    except SecurityError as exc:
        pytest.fail(f"{text!r} passed check but the sandbox stopped it: {exc}")
    except Exception:
        pass
    else:
        assert len(out) <= MAX_OUTPUT
    assert time.perf_counter() - started < 5 * FAST, text


def test_jinjas_own_names_such_as_range_are_no_unknown_variable() -> None:
    # docs/language.md allows range() (bounded at render); SOP202 refused it as a variable.
    plan = (
        'timezone "Asia/Shanghai"\n'
        'template t = "{% for i in range(3) %}{{ i }}{% endfor %}"\n'
        "playbook p { on member joins do { send t to member } }\n"
    )
    assert [d.code for d in check_program(load_text(plan, "t.sop")).diagnostics] == []
    assert render(compiled_template("{% for i in range(3) %}{{ i }}{% endfor %}"), {}) == "012"
