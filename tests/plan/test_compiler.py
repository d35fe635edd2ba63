"""The compiler's template split: plain placeholders are split without Jinja, exactly as Jinja would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sopdsl.plan import TemplateField
from sopdsl.plan.compiler import _jinja_parts, _plain_parts, template_parts

_PIECES = st.one_of(
    st.text(alphabet="你好，欢迎 abc{}%#-.\n\r|_", max_size=6),
    st.sampled_from(
        [
            "{{ member.name }}",
            "{{member.nickname}}",
            "{{  group.name  }}",
            "{{ member.items }}",  # a dict method: Jinja finds it first, so never a plain field
            "{{ member._secret }}",
            "{{ member.name | upper }}",
            "{{- member.name }}",
            "{% if x %}",
            "{# note #}",
            "{{ event.prize }}",
            "{{ member }}",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
def test_the_plain_split_is_jinjas_own_whenever_it_is_made(source: str) -> None:
    plain = _plain_parts(source)
    if plain is not None:
        assert plain == _jinja_parts(source)


def test_a_welcome_splits_into_text_and_fields() -> None:
    assert template_parts("欢迎 {{ member.name }} 加入{{ group.name }}！") == (
        "欢迎 ",
        TemplateField(root="member", field="name"),
        " 加入",
        TemplateField(root="group", field="name"),
        "！",
    )


def test_anything_beyond_plain_fields_is_left_to_jinja() -> None:
    assert template_parts("{{ member.points | int }} 分") is None
    assert template_parts("{% if member.vip %}贵宾{% endif %}") is None
