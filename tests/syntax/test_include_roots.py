"""`include` and `template … = file` stay inside the project folder, and text or paths that are
not valid Unicode (lone surrogates) are diagnostics, never exceptions (issue 9, items 4 and 8).

The project folder is the folder of the file given (of the folder given, on the command line), or
a root declared with `root=` / `--root`. Links are resolved before the check, and a file outside
is never read: no diagnostic may quote it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sopdsl.build import compile_files
from sopdsl.checker import CheckResult, check_program
from sopdsl.cli import main
from sopdsl.diagnostics import CODES, Diagnostic, render
from sopdsl.plan.compiler import compile_program
from sopdsl.syntax.loader import LoadedProgram, load, load_text, read_source

ZONE = 'timezone "Asia/Shanghai"\n'
# What an outside file holds; it must never appear in any diagnostic, source or plan.
SECRET = "root:x:0:0:SECRET-7f3a:/root:/bin/bash"
OUTSIDE_TEXT = f"{SECRET}\ndaemon:x:1:1:SECRET-7f3a:/usr/sbin:/usr/sbin/nologin\n"
PLAYBOOK = "playbook p {\n    in all groups\n    on member joins\n    do { send leak to member }\n}\n"
# A valid playbook file outside the project: included, it would check clean.
OUTSIDE_SOP = ZONE + f'template leak = "{SECRET}"\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/proj (the project), tmp/outside (secrets), tmp/shared (a sibling of proj's folders)."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "passwd").write_text(OUTSIDE_TEXT, encoding="utf-8")
    (tmp_path / "outside" / "valid.sop").write_text(OUTSIDE_SOP, encoding="utf-8")
    (tmp_path / "outside" / "hostname.j2").write_text(SECRET, encoding="utf-8")
    (tmp_path / "proj" / "playbooks").mkdir(parents=True)
    (tmp_path / "proj" / "shared").mkdir()
    (tmp_path / "proj" / "shared" / "common.sop").write_text(
        ZONE + 'template leak = "你好 {{ member.name }}"\n', encoding="utf-8"
    )
    (tmp_path / "proj" / "shared" / "hi.j2").write_text("你好 {{ member.name }}", encoding="utf-8")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def everything_shown(loaded: LoadedProgram, result: CheckResult) -> str:
    """Every diagnostic as `sopdsl check` prints it and as JSON, and every source kept."""
    shown = [render(d, loaded.sources.get(d.span.path)) for d in result.diagnostics]
    shown += [json.dumps(d.to_json(), ensure_ascii=False) for d in result.diagnostics]
    shown += [s.text for s in loaded.sources.values()]
    shown += list(loaded.template_files.values())
    return "\n".join(shown)


def checked(path: Path, root: Path | None = None) -> tuple[LoadedProgram, CheckResult, str]:
    loaded = load(path, root=root)
    result = check_program(loaded)
    shown = everything_shown(loaded, result)
    if result.program is not None:
        shown += compile_program(result.program).dumps()
    return loaded, result, shown


def codes(result: CheckResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def outside_diagnostic(result: CheckResult) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == "SOP006"]
    assert found, [(d.code, d.message) for d in result.diagnostics]
    return found[0]


# ---- defect A: includes -------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["passwd", "valid.sop"])
def test_include_escaping_with_dot_dot_is_refused_unread(tree: Path, target: str) -> None:
    main_sop = write(tree / "proj" / "main.sop", ZONE + f'include "../outside/{target}"\n' + PLAYBOOK)
    _, result, shown = checked(main_sop)
    diagnostic = outside_diagnostic(result)
    assert diagnostic.is_error and result.program is None
    # Located at the string in the include statement.
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 9)
    assert diagnostic.span.end_column == 9 + len(f'"../outside/{target}"')
    assert "outside the project folder" in diagnostic.message
    assert str((tree / "proj").resolve()) in diagnostic.message
    assert diagnostic.hint and "--root" in diagnostic.hint
    assert "SECRET" not in shown


def test_include_of_etc_passwd_never_quotes_it() -> None:
    loaded = load_text(ZONE + 'include "../../../../../../../../etc/passwd"\n', "x.sop")
    result = check_program(loaded)
    assert "SOP006" in codes(result)
    shown = everything_shown(loaded, result)
    assert "root:x:0" not in shown and "/bin/" not in shown


def test_include_of_an_absolute_path_outside_is_refused(tree: Path) -> None:
    target = (tree / "outside" / "valid.sop").resolve()
    main_sop = write(tree / "proj" / "main.sop", ZONE + f'include "{target}"\n' + PLAYBOOK)
    _, result, shown = checked(main_sop)
    assert outside_diagnostic(result).span.line == 2
    assert "SECRET" not in shown


def test_include_of_an_absolute_path_inside_is_fine(tree: Path) -> None:
    target = (tree / "proj" / "shared" / "common.sop").resolve()
    main_sop = write(tree / "proj" / "main.sop", f'include "{target}"\n' + PLAYBOOK)
    _, result, _ = checked(main_sop)
    assert result.ok and result.program is not None, codes(result)


def test_include_through_a_link_inside_pointing_out_is_refused(tree: Path) -> None:
    (tree / "proj" / "link.sop").symlink_to(tree / "outside" / "valid.sop")
    (tree / "proj" / "linked_folder").symlink_to(tree / "outside", target_is_directory=True)
    main_sop = write(
        tree / "proj" / "main.sop", ZONE + 'include "link.sop"\ninclude "linked_folder/passwd"\n' + PLAYBOOK
    )
    _, result, shown = checked(main_sop)
    assert [(d.code, d.span.line) for d in result.diagnostics if d.code == "SOP006"] == [
        ("SOP006", 2),
        ("SOP006", 3),
    ]
    assert "SECRET" not in shown


def test_an_included_file_cannot_escape_either(tree: Path) -> None:
    write(tree / "proj" / "shared" / "more.sop", 'include "../../outside/valid.sop"\n')
    main_sop = write(tree / "proj" / "main.sop", ZONE + 'include "shared/more.sop"\n' + PLAYBOOK)
    _, result, shown = checked(main_sop)
    diagnostic = outside_diagnostic(result)
    assert diagnostic.span.path.endswith("more.sop") and diagnostic.span.line == 1
    assert "SECRET" not in shown


def test_in_tree_includes_and_file_templates_still_work(tree: Path) -> None:
    write(tree / "proj" / "sub" / "inner.sop", 'include "../shared/common.sop"\n')
    main_sop = write(
        tree / "proj" / "main.sop",
        'include "sub/inner.sop"\ntemplate hi = file "shared/hi.j2"\n'
        + PLAYBOOK.replace("send leak", "send hi"),
    )
    loaded, result, _ = checked(main_sop)
    assert result.ok and result.program is not None, codes(result)
    assert "你好 {{ member.name }}" in loaded.template_files.values()
    assert len(loaded.files) == 3


def test_a_link_that_stays_inside_is_fine(tree: Path) -> None:
    (tree / "proj" / "common_link.sop").symlink_to(tree / "proj" / "shared" / "common.sop")
    main_sop = write(tree / "proj" / "main.sop", 'include "common_link.sop"\n' + PLAYBOOK)
    _, result, _ = checked(main_sop)
    assert result.ok, codes(result)


# ---- defect A: template … = file ----------------------------------------------------------------


def test_file_template_escaping_with_dot_dot_is_refused_unread(tree: Path) -> None:
    main_sop = write(
        tree / "proj" / "main.sop", ZONE + 'template leak = file "../outside/hostname.j2"\n' + PLAYBOOK
    )
    _, result, shown = checked(main_sop)
    diagnostic = outside_diagnostic(result)
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 22)
    assert result.program is None
    assert "SECRET" not in shown


def test_file_template_of_etc_hostname_is_refused() -> None:
    loaded = load_text(
        ZONE + 'template leak = file "../../../../../../../../etc/hostname"\n' + PLAYBOOK, "x.sop"
    )
    result = check_program(loaded)
    assert "SOP006" in codes(result) and result.program is None
    assert not loaded.template_files


def test_file_template_of_an_absolute_path_outside_is_refused(tree: Path) -> None:
    target = (tree / "outside" / "hostname.j2").resolve()
    main_sop = write(tree / "proj" / "main.sop", ZONE + f'template leak = file "{target}"\n' + PLAYBOOK)
    _, result, shown = checked(main_sop)
    assert outside_diagnostic(result).span.line == 2
    assert "SECRET" not in shown


def test_file_template_through_a_link_pointing_out_is_refused(tree: Path) -> None:
    (tree / "proj" / "hostname.j2").symlink_to(tree / "outside" / "hostname.j2")
    main_sop = write(tree / "proj" / "main.sop", ZONE + 'template leak = file "hostname.j2"\n' + PLAYBOOK)
    _, result, shown = checked(main_sop)
    assert outside_diagnostic(result).span.line == 2
    assert "SECRET" not in shown


# ---- declared roots and folder arguments --------------------------------------------------------


def test_a_declared_root_allows_a_sibling_folder(tree: Path) -> None:
    main_sop = write(
        tree / "proj" / "playbooks" / "main.sop",
        'include "../shared/common.sop"\ntemplate hi = file "../shared/hi.j2"\n'
        + PLAYBOOK.replace("send leak", "send hi"),
    )
    _, by_default, _ = checked(main_sop)
    assert [d.code for d in by_default.diagnostics if d.is_error] == ["SOP006", "SOP006"]
    _, declared, _ = checked(main_sop, root=tree / "proj")
    assert declared.ok and declared.program is not None, codes(declared)
    # ... but no further.
    write(tree / "proj" / "playbooks" / "bad.sop", ZONE + 'include "../../outside/valid.sop"\n')
    _, still, shown = checked(tree / "proj" / "playbooks" / "bad.sop", root=tree / "proj")
    assert "SOP006" in codes(still) and "SECRET" not in shown


def test_a_declared_root_that_is_not_a_folder_is_a_diagnostic(tree: Path) -> None:
    main_sop = write(tree / "proj" / "main.sop", 'include "shared/common.sop"\n' + PLAYBOOK)
    result = check_program(load(main_sop, root=tree / "no_such_folder"))
    assert "SOP001" in codes(result) and result.program is None


def test_compile_files_takes_a_root(tree: Path) -> None:
    main_sop = write(tree / "proj" / "playbooks" / "main.sop", 'include "../shared/common.sop"\n' + PLAYBOOK)
    assert compile_files([main_sop]).plan is None
    assert compile_files([main_sop], root=tree / "proj").plan is not None


def test_load_text_resolves_from_the_current_folder_or_the_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree / "proj" / "playbooks")
    text = 'include "../shared/common.sop"\n' + PLAYBOOK
    refused = check_program(load_text(text))
    assert "SOP006" in codes(refused)
    allowed = check_program(load_text(text, root=tree / "proj"))
    assert allowed.ok, codes(allowed)
    inside = check_program(load_text('include "shared/common.sop"\n' + PLAYBOOK, root=tree / "proj"))
    assert "SOP001" in codes(inside)  # still relative to the current folder, which has no shared/


def _cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.output, result.exit_code


def test_cli_refuses_outside_files_and_takes_a_root(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tree / "proj" / "playbooks" / "main.sop", 'include "../shared/common.sop"\n' + PLAYBOOK)
    output, code = _cli(["check", "proj/playbooks/main.sop"], tree, monkeypatch)
    assert code == 1 and "error[SOP006]" in output
    assert "outside the project folder 'proj/playbooks'" in output
    output, code = _cli(["check", "--root", "proj", "proj/playbooks/main.sop"], tree, monkeypatch)
    assert code == 0, output
    output, code = _cli(
        ["compile", "--root", "proj", "proj/playbooks/main.sop", "-o", "plan.json"], tree, monkeypatch
    )
    assert code == 0 and (tree / "plan.json").exists(), output
    output, code = _cli(["compile", "proj/playbooks/main.sop", "-o", "plan2.json"], tree, monkeypatch)
    assert code == 1 and "SOP006" in output


def test_cli_a_folder_argument_is_the_root_of_the_files_in_it(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tree / "proj" / "playbooks" / "main.sop", 'include "../shared/common.sop"\n' + PLAYBOOK)
    output, code = _cli(["check", "proj"], tree, monkeypatch)
    assert code == 0, output
    output, code = _cli(["check", "proj/playbooks"], tree, monkeypatch)
    assert code == 1 and "SOP006" in output


def test_cli_never_prints_an_outside_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tree / "proj" / "main.sop",
        ZONE
        + 'include "../outside/passwd"\ninclude "../outside/valid.sop"\n'
        + 'template leak = file "../outside/hostname.j2"\n'
        + PLAYBOOK,
    )
    for fmt in ("text", "json"):
        output, code = _cli(["check", "--format", fmt, "proj/main.sop"], tree, monkeypatch)
        assert code == 1 and output.count("SOP006") == 3, output
        assert "SECRET" not in output


def test_the_new_codes_are_explained() -> None:
    for code in ("SOP006", "SOP007"):
        result = CliRunner().invoke(main, ["explain", code])
        assert result.exit_code == 0 and result.output.startswith(f"{code}: {CODES[code].title}")


# ---- text inside the tree that is not a playbook ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "passwd",
            ("\n".join(f"user{i}:x:{i}:{i}:SECRET-{i}:/home/u{i}:/bin/sh" for i in range(200))).encode(),
        ),
        ("binary", bytes(range(256)) * 8),
        ("long line", ("SECRET-" + "x" * 5000).encode()),
    ],
)
def test_an_in_tree_file_that_is_not_a_playbook_is_quoted_one_line_at_most(
    tree: Path, name: str, data: bytes
) -> None:
    (tree / "proj" / "notes.txt").write_bytes(data)
    main_sop = write(tree / "proj" / "main.sop", ZONE + 'include "notes.txt"\n')
    loaded, result, _ = checked(main_sop)
    assert result.diagnostics and result.program is None, name
    printed = "\n".join(render(d, loaded.sources.get(d.span.path)) for d in result.diagnostics)
    # The normal excerpt of a parse error (one line, cut to about 100 columns) and nothing more.
    assert len(set(re.findall(r"SECRET-\d+", printed))) <= 1, printed
    assert len(printed) < 2000, printed


# ---- defect B: lone surrogates ------------------------------------------------------------------


def _no_exception_and_printable(loaded: LoadedProgram) -> CheckResult:
    result = check_program(loaded)
    if result.program is not None:
        compile_program(result.program).dumps()
    for d in result.diagnostics:
        render(d, loaded.sources.get(d.span.path)).encode("utf-8")
        json.dumps(d.to_json(), ensure_ascii=False).encode("utf-8")
    return result


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (ZONE + "# \ud800\n", 2, 3),
        (ZONE + 'template leak = "hello \udfff"\n' + PLAYBOOK, 2, 24),
        (ZONE + 'include "\ud800.sop"\n', 2, 10),
        (ZONE + 'template leak = file "\udcff.j2"\n' + PLAYBOOK, 2, 23),
        ("\ud83d" + ZONE, 1, 1),  # half of an emoji's surrogate pair
    ],
)
def test_a_lone_surrogate_in_text_is_a_located_diagnostic(text: str, line: int, column: int) -> None:
    result = _no_exception_and_printable(load_text(text, "x.sop"))
    found = [d for d in result.diagnostics if d.code == "SOP007"]
    assert [(d.span.line, d.span.column) for d in found] == [(line, column)]
    assert found[0].is_error and result.program is None


def test_several_surrogates_on_several_lines() -> None:
    result = _no_exception_and_printable(load_text("\ud800\ud801 x \udc00\n\n\udfff", "x.sop"))
    assert [(d.span.line, d.span.column) for d in result.diagnostics if d.code == "SOP007"] == [
        (1, 1),
        (3, 1),
    ]


def test_a_nul_in_an_include_path_is_a_diagnostic() -> None:
    result = _no_exception_and_printable(load_text(ZONE + 'include "a\x00b.sop"\n', "x.sop"))
    assert "SOP001" in codes(result)


@pytest.mark.parametrize("name", ["\ud800.sop", "dir\udcff/x.sop", "\udcff.sop"])
def test_a_surrogate_in_a_path_given_to_load_is_a_diagnostic(name: str) -> None:
    result = _no_exception_and_printable(load(name))
    assert codes(result) == ["SOP007"]
    diagnostic = result.diagnostics[0]
    assert not re.search("[\ud800-\udfff]", diagnostic.span.path + diagnostic.message)


def test_a_surrogate_in_load_text_path_or_root_is_a_diagnostic() -> None:
    assert codes(_no_exception_and_printable(load_text(ZONE, "\ud800.sop"))) == ["SOP007"]
    assert codes(_no_exception_and_printable(load_text(ZONE, "x.sop", root="\ud800"))) == ["SOP007"]
    assert codes(_no_exception_and_printable(load("x.sop", root="\udcff"))) == ["SOP007"]


def test_read_source_with_a_surrogate_path_is_a_diagnostic() -> None:
    found = read_source(Path("\ud800.sop"), "shown.sop")
    assert isinstance(found, Diagnostic) and found.code == "SOP007"


@pytest.mark.skipif(os.name != "posix", reason="file names that are not UTF-8 need a POSIX file system")
def test_a_file_whose_name_is_not_utf8_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.sop"
    try:
        with open(raw, "wb") as f:
            f.write(ZONE.encode())
    except OSError:
        pytest.skip("the file system refuses names that are not UTF-8")
    name = os.fsdecode(raw)  # as Python hands it over from argv: with surrogate escapes
    for args in (
        ["check", name],
        ["check", "--format", "json", name],
        ["fmt", "--check", name],
        ["check", str(tmp_path)],
    ):
        output, code = _cli(args, tmp_path, monkeypatch)
        assert code == 1 and "SOP007" in output, (args, output)
        assert "\\xff\\xfe.sop" in output.replace("\\\\", "\\")  # JSON doubles the backslash
    output, code = _cli(["compile", name, "-o", "p.json"], tmp_path, monkeypatch)
    assert code == 1 and "SOP007" in output


_VALID = ZONE + 'template leak = "你好 {{ member.name }}"\ninclude "x.sop"\n' + PLAYBOOK
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@settings(
    max_examples=int(os.environ.get("SOPDSL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.integers(0, len(_VALID)), SURROGATES), min_size=1, max_size=6))
def test_random_surrogates_only_give_diagnostics(inserts: list[tuple[int, str]]) -> None:
    text = _VALID
    for at, char in sorted(inserts, reverse=True):
        text = text[:at] + char + text[at:]
    result = _no_exception_and_printable(load_text(text, "fuzz.sop"))
    assert "SOP007" in codes(result) and result.program is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_inside_the_tree_is_still_not_read(tree: Path) -> None:
    os.mkfifo(tree / "proj" / "pipe.sop")
    (tree / "proj" / "zero.j2").symlink_to("/dev/zero")
    main_sop = write(
        tree / "proj" / "main.sop", ZONE + 'include "pipe.sop"\ntemplate leak = file "zero.j2"\n' + PLAYBOOK
    )
    _, result, _ = checked(main_sop)
    assert sorted(codes(result)) == ["SOP001", "SOP006"]


def test_test_simulate_plan_why_and_run_take_a_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A corpus playbook moved into proj/playbooks, its common.sop into proj/shared."""
    corpus = Path(__file__).resolve().parent.parent.parent / "playbooks"
    text = (corpus / "J2_new_member_coupon.sop").read_text(encoding="utf-8")
    write(tmp_path / "proj" / "playbooks" / "j2.sop", text.replace('"common.sop"', '"../shared/common.sop"'))
    write(tmp_path / "proj" / "shared" / "common.sop", (corpus / "common.sop").read_text(encoding="utf-8"))
    fixture = (corpus / "J2_new_member_coupon.yaml").read_text(encoding="utf-8")
    write(tmp_path / "proj" / "playbooks" / "j2.yaml", fixture)
    sop, yaml = "proj/playbooks/j2.sop", "proj/playbooks/j2.yaml"
    for args in (
        ["test", "proj/playbooks"],
        ["simulate", sop, "--timeline", yaml],
        ["plan", sop, "--from", "2026-03-02", "--to", "2026-03-02"],
        ["why", "afeng", sop, "--timeline", yaml],
    ):
        output, code = _cli(args, tmp_path, monkeypatch)
        assert code != 0 and "SOP006" in output, (args, output)
        output, code = _cli([args[0], "--root", "proj", *args[1:]], tmp_path, monkeypatch)
        assert code == 0 and "SOP006" not in output, (args, output)
    from sopdsl.live.reload import read_plan

    found = read_plan((sop,), "proj").plan
    assert found is not None and found.playbooks
    refused = read_plan((sop,))
    assert refused.plan is None and any(d.code == "SOP006" for d in refused.diagnostics)


# ---- attachment files ---------------------------------------------------------------------------

RICH = 'template leak = "海报" with image "{path}"\n'


def test_an_attachment_is_found_from_the_file_naming_it_and_planned_from_the_project_folder(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tree / "proj" / "shared" / "posters" / "class.png", "PNG")
    write(tree / "proj" / "shared" / "rich.sop", ZONE + RICH.format(path="posters/class.png"))
    main_sop = write(tree / "proj" / "main.sop", ZONE + 'include "shared/rich.sop"\n' + PLAYBOOK)
    monkeypatch.chdir(tree)  # the plan's path does not depend on the folder sopdsl runs in
    _, result, _ = checked(main_sop)
    assert result.program is not None, codes(result)
    plan = compile_program(result.program)
    [image] = plan.declarations.templates["leak"].attachments
    assert image.model_dump() == {"type": "image", "path": "shared/posters/class.png", "media_id": None}


def test_an_attachment_outside_the_project_or_through_a_link_out_is_refused(tree: Path) -> None:
    (tree / "proj" / "out.png").symlink_to(tree / "outside" / "passwd")
    for path in ("../outside/passwd", "out.png", str((tree / "outside" / "passwd").resolve())):
        main_sop = write(tree / "proj" / "main.sop", ZONE + RICH.format(path=path) + PLAYBOOK)
        _, result, shown = checked(main_sop)
        diagnostic = outside_diagnostic(result)
        assert (diagnostic.span.line, diagnostic.span.column) == (2, 33)  # at the path
        assert result.program is None and "SECRET" not in shown
