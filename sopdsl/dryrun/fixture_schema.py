"""The JSON Schema of fixture files, generated from the fixture models (`fixture_models.py`), so
an editor completes and checks a fixture as it is typed (schemas/fixture.schema.json is this
output, committed; tests/dryrun/test_fixture_schema.py keeps the two equal).

The schema says which fields exist and their types; what only a dry run can know (a time that
does not parse, a member no event names) is still `sopdsl test`'s to report.
"""

from __future__ import annotations

import json
from typing import Any

from sopdsl.dryrun.fixture_models import Fixture

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def fixture_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) a fixture's YAML, read as plain data, must satisfy."""
    generated = Fixture.model_json_schema()
    return {
        "$schema": DIALECT,
        **generated,
        "title": "sopdsl fixture timeline",
        "description": "A dry-run fixture for `sopdsl test`: groups and members present at `start`, a "
        "timeline of events, and what is expected to happen. Times are text (`2026-03-02 10:00`) in "
        "the fixture's time zone. See docs/testing.md.",
    }


def schema_text() -> str:
    """The schema as the committed file holds it: indented JSON ending in a newline."""
    return json.dumps(fixture_schema(), ensure_ascii=False, indent=2) + "\n"
