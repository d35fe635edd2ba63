"""Plans of earlier format versions, read as the current one: a store keeps the plans its journals
name, so an upgrade of sopdsl must still open them (a shard whose plan cannot be read is wedged).

Each step here turns the JSON of one version into the next; `upgrade` runs them in order. The
content hash of an old plan is checked the way that version computed it, and kept, so the journals
that name the plan by its hash still find it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sopdsl.errors import PlanError


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """The plan JSON of an earlier format version as the current version has it, its hash checked."""
    version = data.get("format_version")
    if version == 2:
        _check_v2_hash(data)
        return _v2_to_v3(data)
    raise PlanError(f"plan format version {version!r} is not supported (expected 3); recompile it")


def _check_v2_hash(data: dict[str, Any]) -> None:
    # Version 2 hashed pydantic-core's compact JSON of the plan without its hash: the same bytes as
    # the standard library's compact dump of the same JSON, keys in the order the file has them.
    body = {k: v for k, v in data.items() if k != "content_hash"}
    canonical = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if hashlib.sha256(canonical.encode("utf-8")).hexdigest() != data.get("content_hash"):
        raise PlanError(
            "plan content hash does not match: the file was changed after compiling; recompile it"
        )


def _v2_instr(instr: dict[str, Any]) -> dict[str, Any]:
    # A `wait_for` kept its event and timeout in the instruction's `pattern` and `duration`.
    if instr.get("op") != "wait_for":
        return instr
    rest = {k: v for k, v in instr.items() if k not in ("pattern", "duration")}
    return {**rest, "wait": {"pattern": instr["pattern"], "timeout": instr["duration"]}}


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    # Version 2 embedded the checked model: the program with every playbook's nested steps, and
    # beside it each playbook's instructions. Version 3 keeps the instructions and the declarations.
    try:
        program = dict(data["program"])
        program.pop("playbooks", None)
        program["templates"] = {
            name: {k: v for k, v in template.items() if k != "variables"}  # parts: rendered by Jinja
            for name, template in program["templates"].items()
        }
        playbooks = []
        for compiled in data["playbooks"]:
            playbook = {k: v for k, v in compiled["playbook"].items() if k not in ("steps", "schedule")}
            entries = compiled["playbook"].get("schedule", [])
            playbook["code"] = [_v2_instr(i) for i in compiled["code"]]
            playbook["schedule"] = [
                {**{k: v for k, v in entry.items() if k != "steps"}, "code": [_v2_instr(i) for i in code]}
                for entry, code in zip(entries, compiled["schedule"], strict=True)
            ]
            playbooks.append(playbook)
        return {
            "format_version": 3,
            "content_hash": data["content_hash"],
            "declarations": program,
            "playbooks": playbooks,
            "event_index": data["event_index"],
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanError(
            f"plan of format version 2 is malformed ({type(exc).__name__}: {exc}); recompile it"
        ) from None
