"""The admin API: describe the community (groups, members, bulk imports), look into a member's
live state, and work the staff task inbox.

Input: authenticated HTTP requests (`app.py` checks the token and the host first). Output: JSON
answers; groups and members registered through the runtime's journal (`Runtime.register`), so
they survive restarts and replay exactly; tasks read from the engine (the flows waiting in an
`assign … within … else`) and finished with a `task_done` event, so a task not done by its
deadline takes its `else` branch as the engine decides. Claims (who is on a task) are the
service's own, kept in the store's task table (`store_tasks.py`), so a restart forgets none.
What is shown of the engine (`admin_views.py`) is asked of `runtime.look`, so a shard run by
Temporal (`sopdsl run --engine temporal://...`) answers the same from its workflow; the task
inbox, which needs the store, answers 501 there, saying why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sopdsl.errors import SopdslError
from sopdsl.live.bodies import BodyError
from sopdsl.live.member_records import (
    CsvMembers,
    RecordError,
    group_from,
    jsonl_member,
    lines_of,
    member_from,
)

if TYPE_CHECKING:
    from sopdsl.live.service import Service

# Why the task inbox is refused (501) when the shard runs on Temporal: what it shows beyond the
# engine's open tasks lives in the service's store, which that mode has none of.
NO_STORE = (
    "the task inbox keeps its claims, done marks and task messages in the service's store "
    "(sopdsl run --store), and a Temporal shard keeps its engine in the workflow, with no store; "
    "route `task` and `escalate` actions to an executor (a webhook, WeCom) to work them there"
)
IMPORT_BATCH = 500  # members stored per transaction while an import streams in
IMPORT_TYPES = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}

_OBJ = {"application/json": {"schema": {"type": "object"}}}
_NO_STORE = {"description": "the shard runs on Temporal (`--engine`): the task inbox needs a store"}
PATHS: dict[str, Any] = {
    "/admin/groups/{group}": {
        "put": {
            "summary": "Register or update a group: name, tags, timezone, operator, owner",
            "requestBody": {"content": _OBJ},
            "responses": {"200": {"description": "the group as the engine now has it"}},
        },
        "get": {"summary": "A group as the engine has it"},
    },
    "/admin/members/{member}": {
        "put": {
            "summary": "Register or update a member: name, nickname, tags, attributes, counters, groups, "
            "joined_at, referrer, channel, contact, owner; history before the start: "
            "group_joined_at, group_last_message_at (by group), last_order_at",
            "requestBody": {"content": _OBJ},
        },
        "get": {"summary": "A member's live state, the flows they are in, and their pending timers"},
    },
    "/admin/members/import": {
        "post": {
            "summary": "Import members in bulk, streamed: CSV with a header row, or JSONL",
            "requestBody": {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        }
    },
    "/admin/tasks": {
        "get": {
            "summary": "Open tasks (`assign … within …`), with their deadline and claim",
            "responses": {"501": _NO_STORE},
        }
    },
    "/admin/tasks/{key}/claim": {
        "post": {
            "summary": 'Claim a task: {"by": NAME}; 409 if another holds it',
            "responses": {"501": _NO_STORE},
        }
    },
    "/admin/tasks/{key}/done": {
        "post": {
            "summary": "Mark a task done: its flow goes on with `then`",
            "responses": {"501": _NO_STORE},
        }
    },
}


def admin_routes(service: Service, json_body: Callable[[Request], Awaitable[Any]]) -> list[Route]:
    """The admin API's routes over `service`; `json_body` reads a request's JSON within the limits."""
    runtime: Any = service.runtime

    def zone() -> str:
        return str(runtime.plan.declarations.timezone)

    def answer(body: Any, status: int = HTTPStatus.OK) -> Response:
        from sopdsl.live.app import Answer

        return Answer(body, status_code=status)

    def problem(status: int, message: str, field: str | None = None) -> Response:
        service.counters.refuse(status)
        return answer({"error": message, "field": field}, status)

    async def put_group(request: Request) -> Response:
        group_id = request.path_params["group"]
        try:
            record = group_from(group_id, await json_body(request))
            await run_in_threadpool(runtime.register, [record])
        except RecordError as exc:
            return problem(HTTPStatus.BAD_REQUEST, f"group '{group_id}': {exc}", exc.field)
        return answer({"group": await run_in_threadpool(runtime.look, "group", group_id)})

    async def get_group(request: Request) -> Response:
        group_id = request.path_params["group"]
        found = await run_in_threadpool(runtime.look, "group", group_id)
        if found is None:
            return problem(HTTPStatus.NOT_FOUND, f"no group '{group_id}'")
        return answer({"group": found})

    async def put_member(request: Request) -> Response:
        member_id = request.path_params["member"]
        try:
            record = member_from(member_id, await json_body(request), zone())
            await run_in_threadpool(runtime.register, [record])
        except RecordError as exc:
            return problem(HTTPStatus.BAD_REQUEST, f"member '{member_id}': {exc}", exc.field)
        except SopdslError as exc:
            return problem(HTTPStatus.BAD_REQUEST, f"member '{member_id}': {exc}")
        return answer(await run_in_threadpool(runtime.look, "member", member_id))

    async def get_member(request: Request) -> Response:
        member_id = request.path_params["member"]
        found = await run_in_threadpool(runtime.look, "member", member_id)
        if found is None:
            return problem(HTTPStatus.NOT_FOUND, f"no member '{member_id}'")
        return answer(found)

    async def import_members(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind not in IMPORT_TYPES:
            raise BodyError(415, "send members as text/csv (a header row first) or application/x-ndjson")
        types = {name: a.type.value for name, a in runtime.plan.declarations.attributes.items()}
        reader = CsvMembers(zone(), types)
        imported, failed, batch = 0, [], []
        try:
            async for number, line in lines_of(request.stream()):
                try:
                    record = (
                        reader.take(line)
                        if IMPORT_TYPES[kind] == "csv"
                        else (jsonl_member(line, zone()) if line.strip() else None)
                    )
                except RecordError as exc:
                    failed.append({"line": number, "error": str(exc), "field": exc.field})
                    continue
                if record is not None:
                    batch.append(record)
                if len(batch) >= IMPORT_BATCH:
                    await run_in_threadpool(runtime.register, batch)
                    imported, batch = imported + len(batch), []
        except RecordError as exc:
            failed.append({"line": None, "error": str(exc), "field": None})
        if batch:
            await run_in_threadpool(runtime.register, batch)
            imported += len(batch)
        status = HTTPStatus.OK if not failed else HTTPStatus.BAD_REQUEST
        if failed:
            service.counters.refuse(status)
        return answer({"imported": imported, "failed": failed}, status)

    async def inbox() -> list[dict[str, Any]]:
        return await run_in_threadpool(
            inbox_tasks, await run_in_threadpool(runtime.look, "tasks", ""), runtime.store, runtime.shard
        )

    def without_store(endpoint: str) -> Response | None:
        """501 for an endpoint that needs the service's store when the runtime has none (Temporal)."""
        if getattr(runtime, "store", None) is not None:
            return None
        service.counters.refuse(HTTPStatus.NOT_IMPLEMENTED)
        return answer(
            {"error": f"{endpoint} is not available with the Temporal backend: {NO_STORE}", "field": None},
            HTTPStatus.NOT_IMPLEMENTED,
        )

    async def list_tasks(request: Request) -> Response:
        if (refused := without_store("GET /admin/tasks")) is not None:
            return refused
        return answer({"tasks": await inbox()})

    async def claim(request: Request) -> Response:
        if (refused := without_store("POST /admin/tasks/{key}/claim")) is not None:
            return refused
        key = request.path_params["key"]
        body = await json_body(request)
        who = body.get("by") if isinstance(body, dict) else None
        if not isinstance(who, str) or not who.strip():
            return problem(HTTPStatus.BAD_REQUEST, 'say who claims the task: {"by": NAME}', "by")
        if key not in {t["key"] for t in await inbox()}:
            return problem(
                HTTPStatus.NOT_FOUND, f"no open task '{key}' (done, past its deadline, or unknown)"
            )
        holder = await run_in_threadpool(runtime.store.claim_task, runtime.shard, key, who)
        if holder != who:
            return problem(HTTPStatus.CONFLICT, f"task '{key}' is claimed by {holder}")
        return answer({"key": key, "claimed_by": who})

    async def done(request: Request) -> Response:
        if (refused := without_store("POST /admin/tasks/{key}/done")) is not None:
            return refused
        key = request.path_params["key"]
        task = next((t for t in await inbox() if t["key"] == key), None)
        if task is None:
            return problem(
                HTTPStatus.NOT_FOUND, f"no open task '{key}' (done, past its deadline, or unknown)"
            )
        if task["status"] == "escalated" or task.get("instead_of"):
            # No flow waits on it (it went on at the deadline, or never waited): done is staff's
            # word, kept in the store.
            await run_in_threadpool(runtime.store.finish_task, runtime.shard, key)
            return answer({"key": key, "status": "done"})
        status, body = await run_in_threadpool(
            service.submit, {"kind": "task_done", "data": {"task": key}, "id": f"task_done:{key}"}
        )
        await run_in_threadpool(runtime.store.finish_task, runtime.shard, key)
        return answer({"key": key, **body}, status)

    return [
        Route("/admin/groups/{group}", put_group, methods=["PUT"]),
        Route("/admin/groups/{group}", get_group, methods=["GET"]),
        Route("/admin/members/import", import_members, methods=["POST"]),
        Route("/admin/members/{member}", put_member, methods=["PUT"]),
        Route("/admin/members/{member}", get_member, methods=["GET"]),
        Route("/admin/tasks", list_tasks, methods=["GET"]),
        Route("/admin/tasks/{key}/claim", claim, methods=["POST"]),
        Route("/admin/tasks/{key}/done", done, methods=["POST"]),
    ]


# What the inbox shows of a task's `task` (or `escalate`) action: whom it is for, the message
# staff are asked to send, its attachments.
_SHOWN = ("text", "to", "assignee", "operator", "template", "message", "attachments", "instead_of", "because")


def inbox_tasks(open_tasks: list[dict[str, Any]], store: Any, shard: str) -> list[dict[str, Any]]:
    """The inbox: the open tasks (as `admin_views.open_tasks` reads them from the engine), then the tasks no flow
    waits on (a step the platform cannot perform, `instead_of`; an escalation) not yet marked
    done, each with its message, its escalation and its claim."""
    rows = {
        (row.kind, row.key): row.action for row in store.outbox(shard) if row.kind in ("task", "escalate")
    }
    marks = store.task_marks(shard)
    tasks = []
    for task in open_tasks:
        detail = rows.get(("task", task["key"]), {}).get("detail", {})
        tasks.append(task | {k: detail.get(k) for k in _SHOWN} | {"status": "open", "escalated_to": None})
    for (kind, row_key), action in rows.items():
        detail = action.get("detail", {})
        escalated = kind == "escalate"
        key = str(detail.get("task")) if escalated else row_key
        if not (escalated or detail.get("instead_of")) or (key in marks and marks[key].done):
            continue
        tasks.append(
            {
                "key": key,
                "playbook": action.get("playbook"),
                "member": action.get("member"),
                "group": action.get("group"),
                "deadline": detail.get("due"),
                **{k: detail.get(k) for k in _SHOWN},
                "assignee": detail.get("undone_by") if escalated else detail.get("assignee"),
                "status": "escalated" if escalated else "open",
                "escalated_to": detail.get("assignee") if escalated else None,
            }
        )
    for task in tasks:
        task["claimed_by"] = marks[task["key"]].claimed_by if task["key"] in marks else None
    return tasks
