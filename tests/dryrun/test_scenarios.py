"""The scenario fixtures in `playbooks/`: each scenario has a fixture that passes, and each fixture
can fail. A mutation (an edit to the playbook, such as `28 days` → `27 days`, a wrong template or a
dropped condition) listed in `tests/mutations/*.yaml` must make the scenario's fixture fail: a
fixture that passes whatever the playbook says proves nothing.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from sopdsl.dryrun.testing import run_tests

ROOT = Path(__file__).resolve().parent.parent.parent
PLAYBOOKS = ROOT / "playbooks"
MUTATIONS = Path(__file__).resolve().parent.parent / "mutations"
# test_corpus.py checks that these files cover every scenario of SCENARIOS.md.
SCENARIO_IDS = sorted(p.name[:2] for p in PLAYBOOKS.glob("[A-Z][0-9]_*.sop"))
FIXTURES = sorted(PLAYBOOKS.glob("*.yaml"))


@cache
def mutations() -> list[dict[str, Any]]:
    """Every listed mutation, with the file it came from."""
    found: list[dict[str, Any]] = []
    for path in sorted(MUTATIONS.glob("*.yaml")):
        found.extend(
            {**entry, "listed_in": path.name}
            for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []
        )
    return found


def test_every_scenario_has_a_fixture() -> None:
    assert {p.stem[:2] for p in FIXTURES} >= set(SCENARIO_IDS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_the_fixture_passes(fixture: Path) -> None:
    report = run_tests([fixture])
    assert report.exit_code == 0, "\n".join(report.lines())
    assert report.passed >= 2  # a fixture checks something that happens and something that must not


def test_every_scenario_has_a_mutation() -> None:
    assert {m["scenario"] for m in mutations()} >= set(SCENARIO_IDS)


@pytest.mark.parametrize(
    "mutation", mutations(), ids=lambda m: f"{m['scenario']}:{m['replace'][:20]}->{m['with'][:20]}"
)
def test_the_mutation_makes_the_fixture_fail(mutation: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, folder)
    target = folder / mutation["file"]
    text = target.read_text(encoding="utf-8")
    # An exact, single occurrence, so the mutation cannot silently stop applying when the playbook changes.
    assert text.count(mutation["replace"]) == 1, (
        f"{mutation['replace']!r} must occur once in {mutation['file']}"
    )
    target.write_text(text.replace(mutation["replace"], mutation["with"]), encoding="utf-8")
    fixtures = sorted(folder.glob(f"{mutation['scenario']}_*.yaml"))
    assert fixtures, f"no fixture for {mutation['scenario']}"
    report = run_tests(fixtures)
    # 1: an expectation failed. 2 would mean the mutated playbook no longer checks, which proves nothing.
    assert report.exit_code == 1, "\n".join(report.lines())
