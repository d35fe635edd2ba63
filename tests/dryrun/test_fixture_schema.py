"""The fixture JSON Schema: the committed file is what `sopdsl schema fixture` prints (generated
from the models), and every fixture of the corpus validates against it, read as an editor reads
YAML, so completion and checking in an editor agree with `sopdsl test`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.cli_dryrun import find_fixtures
from sopdsl.dryrun.fixture_schema import fixture_schema, schema_text
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.errors import FixtureError

ROOT = Path(__file__).resolve().parent.parent.parent
COMMITTED = ROOT / "schemas" / "fixture.schema.json"
# The corpus: the scenario playbooks' fixtures and the engine cases', found as `sopdsl test` finds them.
FIXTURES = find_fixtures((str(ROOT / "playbooks"), str(ROOT / "tests" / "engine_cases")))


class _EditorLoader(yaml.SafeLoader):
    """YAML as an editor's language server reads it for a schema: a date or time is text
    (YAML 1.2 has no timestamp type; sopdsl's own reader keeps them as text too)."""


_EditorLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read(text: str) -> Any:
    return yaml.load(text, Loader=_EditorLoader)  # a SafeLoader: no objects built


VALIDATOR = jsonschema.Draft202012Validator(fixture_schema())


def test_the_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "schemas/fixture.schema.json is stale: run `sopdsl schema fixture > schemas/fixture.schema.json`"
    )
    result = CliRunner().invoke(main, ["schema", "fixture"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(fixture_schema())


def test_the_corpus_is_found() -> None:
    assert set((ROOT / "playbooks").rglob("*.yaml")) <= set(FIXTURES)
    assert len(FIXTURES) >= 50


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_fixture_validates(path: Path) -> None:
    try:
        load_fixture(path, path.name)
    except FixtureError:
        pytest.fail(f"{path.name} is in the corpus but does not load")
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATOR.iter_errors(read(path.read_text("utf-8")))
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"evnets": []}, ""),  # a misspelt field, which sopdsl test refuses too
        ({"events": [{"at": "2026-03-01 10:00", "kind": "jion"}]}, "events.0.kind"),
        ({"expect": [{"action": "send", "within": ["2026-03-01 10:00"]}]}, "expect.0.within"),
        ({"members": [{"id": "m1", "tags": "vip"}]}, "members.0.tags"),
        ({"seed": "one"}, "seed"),
    ],
)
def test_the_schema_refuses_what_sopdsl_refuses(change: dict[str, Any], where: str, tmp_path: Path) -> None:
    fixture = {"start": "2026-03-01 09:00", **change}
    errors = list(VALIDATOR.iter_errors(fixture))
    assert errors and {".".join(map(str, e.absolute_path)) for e in errors} == {where}
    path = tmp_path / "f.yaml"
    path.write_text(json.dumps(fixture), encoding="utf-8")
    with pytest.raises(FixtureError):
        load_fixture(path, "f.yaml")


def test_a_missing_start_is_refused() -> None:
    assert [e.message for e in VALIDATOR.iter_errors({})] == ["'start' is a required property"]
