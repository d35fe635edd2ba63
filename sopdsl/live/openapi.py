"""The service's OpenAPI description (`GET /openapi.json`), written out rather than inferred.

Input: nothing. Output: an OpenAPI 3.1 document naming every route, its body and its answers,
so a bot developer can generate a client; `tests/live/test_app.py` checks it names every route
the app serves.
"""

from __future__ import annotations

from typing import Any

from sopdsl import __version__
from sopdsl.kinds import EVENTS


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = {"$ref": "#/components/schemas/Error"}
_REFUSALS = {
    "400": _json(_ERROR, "Malformed: not JSON, nested too deep, a number too long, or a bad field"),
    "401": _json(_ERROR, "No known bearer token"),
    "403": _json(_ERROR, "The token is not allowed this shard"),
    "408": _json(_ERROR, "The body did not arrive in time"),
    "413": _json(_ERROR, "The body is over 4 MiB"),
    "415": _json(_ERROR, "The body is not declared application/json"),
    "421": _json(_ERROR, "The Host header names a host this service does not answer to"),
    "503": _json(_ERROR, "The service is stopping"),
}
# Every request passes the Host check; all but the open endpoints the token check.
GUARDED = {k: _REFUSALS[k] for k in ("401", "403", "421")}
# An endpoint that reads a JSON body: `bodies.py`'s refusals.
BODY_REFUSALS = {k: _REFUSALS[k] for k in ("400", "408", "413", "415")}


def answers(description: str, *statuses: tuple[str, str], body: bool = False) -> dict[str, Any]:
    """The `responses` of a guarded endpoint: its own (status, what it means), the guards' refusals,
    and with `body` those of reading a JSON body."""
    own = {
        status: _json(_ERROR if status >= "400" else {"type": "object"}, what) for status, what in statuses
    }
    return {
        "200": _json({"type": "object"}, description),
        **GUARDED,
        **(BODY_REFUSALS if body else {}),
        **own,
    }


def _probe(summary: str, up: str, down: str) -> dict[str, Any]:
    """A health probe's path: no token, 200 when `up`, 503 when `down`, 421 for a foreign Host."""
    return {
        "get": {
            "summary": summary,
            "security": [],
            "responses": {
                "200": {"description": up},
                "503": {"description": down},
                "421": _REFUSALS["421"],
            },
        }
    }


def path_parameter(name: str) -> dict[str, Any]:
    """A required text parameter of a templated path (`/admin/groups/{group}`)."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_EVENT = {
    "type": "object",
    "required": ["kind"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": sorted(str(k.value) for k in EVENTS)},
        "member": {"type": "string"},
        "group": {"type": "string"},
        "name": {"type": "string"},
        "data": {"type": "object"},
        "time": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "id": {"type": "string"},
    },
}

_FED = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "description": "events newly stored"},
        "stored": {"type": "array", "items": {"type": "integer"}, "description": "their places"},
        "duplicate": {"type": "integer", "description": "events whose id was taken before"},
        "duplicate_ids": {"type": "array", "items": {"type": "string"}},
        "failed": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "error": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                },
            },
        },
        "not_tried": {"type": "array", "items": {"type": "integer"}},
        "actions": {
            "type": "array",
            "items": {"type": "object"},
            "description": "actions decided at once; `status` is `queued` until an executor runs them",
        },
    },
}

_PATHS: dict[str, Any] = {
    "/events": {
        "post": {
            "summary": "Feed one event, or a list of them in order (one transaction)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]}}
                },
            },
            "responses": {"202": _json(_FED, "Stored (or known duplicates)"), **_REFUSALS},
            "parameters": [
                {
                    "name": "shard",
                    "in": "query",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"},
                    "description": "another shard (community) of the store than the process's own",
                }
            ],
        }
    },
    "/healthz": _probe("Liveness", "alive", "stopping"),
    "/readyz": _probe(
        "Readiness: the timer loop has run and reached the store", "ready", "starting, failing or stopping"
    ),
    "/health": _probe("Health with uptime and the timer loop's last error", "healthy", "failing or stopping"),
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text format 0.0.4)",
            "responses": {"200": {"description": "the metrics", "content": {"text/plain": {}}}, **GUARDED},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This description",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), "421": _REFUSALS["421"]},
        }
    },
    "/report": {
        "get": {
            "summary": "The report of the live figures of local days `from` to `to`: HTML, or JSON",
            "parameters": [
                {
                    "name": "from",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "format": "date"},
                },
                {
                    "name": "to",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "format": "date"},
                },
                {"name": "format", "in": "query", "schema": {"enum": ["html", "json"], "default": "html"}},
            ],
            "responses": {
                "200": {"description": "The report", "content": {"text/html": {}, "application/json": {}}},
                "400": _json(
                    _ERROR,
                    "A day not written YYYY-MM-DD, a wrong format, a parameter given twice, or a range over 366 days",
                ),
                "404": _json(_ERROR, "This service keeps no live figures"),
                **GUARDED,
            },
        }
    },
}


def describe(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document; `extra_paths` adds routes described elsewhere (the admin API)."""
    from sopdsl.live.admin import PATHS as ADMIN_PATHS

    return {
        "openapi": "3.1.0",
        "info": {"title": "sopdsl run", "version": __version__},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
                }
            },
        },
        "paths": {**_PATHS, **ADMIN_PATHS, **(extra_paths or {})},
    }
