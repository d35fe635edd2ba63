"""A task whose text cannot be rendered fails visibly, as a send whose template fails does; it
used to go to staff as its raw source ("{{ member.name }} 投诉：{{ event.text }}") marked done."""

from __future__ import annotations

from test_reload import T0, compile_text

from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event

COMPLAINTS = """
    timezone "Asia/Shanghai"
    event complaint "投诉" { text: text }
    playbook p "投诉处理" {
        on event complaint
        do {
            assign "{{ member.name }} 投诉：{{ event.text }}" to operator within 2 hours else {
                tag member "未处理"
            }
        }
    }
"""


def _tasks(data: dict[str, str]) -> list[tuple[str, str, str | None, str]]:
    engine = Engine(compile_text(COMPLAINTS), start=T0)
    engine.add_group("g1", operator="小美")  # someone to do it: a task for nobody is "unassigned"
    engine.feed(Event("join", T0, "m1", "g1", {"name": "阿峰"}))
    engine.feed(Event("custom", T0 + 60, "m1", "g1", data, name="complaint"))
    engine.advance(T0 + 3 * 3600)
    return [(a.kind, a.status, a.reason, a.detail.get("text", "")) for a in engine.log if a.kind != "tag"]


def test_a_task_whose_text_renders_goes_to_staff_done() -> None:
    assert _tasks({"text": "发货太慢"}) == [("task", "done", None, "阿峰 投诉：发货太慢")]


def test_a_task_whose_text_cannot_render_fails_with_the_reason() -> None:
    [(kind, status, reason, text)] = _tasks({"txt": "发货太慢"})  # the bot sent the field misspelt
    assert (kind, status) == ("task", "failed")
    assert reason is not None and "template error" in reason and "text" in reason
    assert text.startswith("{{ member.name }}")  # what the playbook says, for whoever reads the log


def test_a_template_jinja_cannot_compile_fails_once_with_template_error_not_twice() -> None:
    # "template error: RenderError: template error: No filter named 'date'." before.
    from sopdsl.engine.rendering import RenderError
    from sopdsl.engine.state import Flow

    engine = Engine(compile_text(COMPLAINTS), start=T0)
    flow = Flow(1, 0, -1, "m1", "g1", 0, "t", T0)
    try:
        engine._render("{{ member.joined_at | date }}", None, flow, None, None)
    except RenderError as exc:
        assert str(exc).count("template error") == 1 and "No filter named 'date'" in str(exc)
    else:
        raise AssertionError("an unknown filter rendered")
