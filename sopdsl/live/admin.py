"""The admin API: describe the community (groups, members, bulk imports), look into a member's
live state, work the staff task inbox, and send parked actions again.

Input: authenticated HTTP requests (`app.py` checks the token and the host first). Output: JSON
answers; groups and members registered through the runtime's journal (`Runtime.register`), so
they survive restarts and replay exactly; tasks read from the engine (the flows waiting in an
`assign … within … else`) and finished with a `task_done` event, so a task not done by its
deadline takes its `else` branch as the engine decides. Claims (who is on a task) are the
service's own, kept in the store's task table (`store_tasks.py`), so a restart forgets none.
What is shown of the engine (`admin_views.py`) is asked of `runtime.look`, and the inbox of its
`TaskInbox` (the store's, `StoreInbox`, or the runtime's own `task_inbox`), so a shard run by
Temporal (`sopdsl run --engine temporal://...`) answers the same from its workflow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, compile_path

from sopdsl.engine.actions import Action
from sopdsl.errors import SopdslError
from sopdsl.live.admin_views import TaskInbox, inbox_task, inbox_tasks
from sopdsl.live.bodies import BodyError
from sopdsl.live.dispatch import payload
from sopdsl.live.intake import name_problem, surrogate
from sopdsl.live.member_records import (
    CsvMembers,
    GroupIn,
    MemberIn,
    RecordError,
    check_attributes,
    group_from,
    jsonl_member,
    lines_of,
    member_from,
)
from sopdsl.live.openapi import answers, path_parameter
from sopdsl.live.outbox import executor_key
from sopdsl.live.store import OutboxRow
from sopdsl.plan import timeutil

if TYPE_CHECKING:
    from sopdsl.live.service import Service

IMPORT_BATCH = 500  # members stored per transaction while an import streams in
# Seconds an import may go without a byte: it may stream for as long as it has members, but one
# that stops sending held its connection (one of the service's 2,000) for good.
IMPORT_IDLE = 30.0
IMPORT_TYPES = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}


def _schema(model: type[GroupIn] | type[MemberIn]) -> dict[str, Any]:
    # The model's own JSON schema: it refuses unknown fields (additionalProperties: false) as the API does.
    return {"application/json": {"schema": model.model_json_schema()}}


_GROUP, _MEMBER, _KEY = (path_parameter(name) for name in ("group", "member", "key"))
_NO_TASK = ("404", "No open task with this key (done, past its deadline, or unknown)")
PATHS: dict[str, Any] = {
    "/admin/groups/{group}": {
        "parameters": [_GROUP],
        "put": {
            "summary": "Register or update a group: name, tags, timezone, operator, owner",
            "requestBody": {"required": True, "content": _schema(GroupIn)},
            "responses": answers("the group as the engine now has it", body=True),
        },
        "get": {
            "summary": "A group as the engine has it",
            "responses": answers("the group", ("404", "No such group")),
        },
    },
    "/admin/members/{member}": {
        "parameters": [_MEMBER],
        "put": {
            "summary": "Register or update a member: name, nickname, tags, attributes, counters, groups, "
            "joined_at, referrer, channel, contact, owner; history before the start: "
            "group_joined_at, group_last_message_at (by group), last_order_at",
            "requestBody": {"required": True, "content": _schema(MemberIn)},
            "responses": answers("the member's state as `GET` shows it", body=True),
        },
        "get": {
            "summary": "A member's live state, the flows they are in, and their pending timers",
            "responses": answers("the member's state", ("404", "No such member")),
        },
    },
    "/admin/members/import": {
        "post": {
            "summary": "Import members in bulk, streamed: CSV with a header row, or JSONL",
            "requestBody": {
                "required": True,
                "content": {"text/csv": {}, "application/x-ndjson": {}, "application/jsonl": {}},
            },
            "responses": answers(
                "all imported",
                ("400", "Some lines were refused (`failed`, by line); the rest were imported"),
                ("415", "The body is not text/csv or application/x-ndjson"),
            ),
        }
    },
    "/admin/parked": {
        "get": {
            "summary": "Actions given up on after their retries (parked), with their last error",
            "responses": answers(
                "the parked actions", ("501", "This engine parks no actions (Temporal retries them)")
            ),
        }
    },
    "/admin/parked/{key}/requeue": {
        "parameters": [_KEY],
        "post": {
            "summary": "Send a parked action again, with fresh retries, once its cause is fixed",
            "responses": answers(
                "queued again",
                ("404", "No parked action with this key"),
                ("501", "This engine parks no actions (Temporal retries them)"),
            ),
        },
    },
    "/admin/tasks": {
        "get": {
            "summary": "Open tasks (`assign … within …`), with their deadline and claim",
            "responses": answers("the tasks"),
        }
    },
    "/admin/tasks/{key}/claim": {
        "parameters": [_KEY],
        "post": {
            "summary": 'Claim a task: {"by": NAME}; 409 if another holds it',
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["by"],
                            "properties": {"by": {"type": "string", "minLength": 1}},
                        }
                    }
                },
            },
            "responses": answers("claimed", _NO_TASK, ("409", "Someone else holds the task"), body=True),
        },
    },
    "/admin/tasks/{key}/done": {
        "parameters": [_KEY],
        "post": {
            "summary": "Mark a task done: its flow goes on with `then`",
            "responses": answers(
                "done (a task no flow waited on)",
                ("202", "Done: the `task_done` event was stored; `actions` it caused"),
                ("400", "The `task_done` event was refused"),
                _NO_TASK,
                ("409", "Its deadline has passed: its flow takes its `else` steps"),
                ("503", "The service is stopping"),
            ),
        },
    },
}


def admin_routes(service: Service, json_body: Callable[[Request], Awaitable[Any]]) -> list[Route]:
    """The admin API's routes over `service`; `json_body` reads a request's JSON within the limits."""
    runtime: Any = service.runtime

    def zone() -> str:
        return str(runtime.plan.declarations.timezone)

    def attribute_types() -> dict[str, str]:
        return {name: a.type.value for name, a in runtime.plan.declarations.attributes.items()}

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
            check_attributes(record, attribute_types())
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
        types = attribute_types()
        reader = CsvMembers(zone(), types)
        imported, failed, batch = 0, [], []
        status = HTTPStatus.OK
        try:
            async for number, line in lines_of(_arriving(request.stream(), IMPORT_IDLE)):
                if isinstance(line, RecordError):
                    failed.append({"line": number, "error": str(line), "field": None})
                    continue
                try:
                    record = (
                        reader.take(line)
                        if IMPORT_TYPES[kind] == "csv"
                        else (jsonl_member(line, zone()) if line.strip() else None)
                    )
                    if record is not None:
                        check_attributes(record, types)
                except RecordError as exc:
                    failed.append({"line": number, "error": str(exc), "field": exc.field})
                    if IMPORT_TYPES[kind] == "csv" and reader.header is None:
                        break  # without a header naming `id`, no row can be read
                    continue
                if record is not None:
                    batch.append(record)
                if len(batch) >= IMPORT_BATCH:
                    await run_in_threadpool(runtime.register, batch)
                    imported, batch = imported + len(batch), []
        except RecordError as exc:
            failed.append({"line": None, "error": str(exc), "field": None})
        except BodyError as exc:  # it stopped arriving: what came before is imported
            failed.append({"line": None, "error": exc.message, "field": None})
            status = HTTPStatus(exc.status)
        if batch:
            await run_in_threadpool(runtime.register, batch)
            imported += len(batch)
        if status == HTTPStatus.OK and failed:
            status = HTTPStatus.BAD_REQUEST
        if failed:
            service.counters.refuse(status)
        return answer({"imported": imported, "failed": failed}, status)

    # The in-process runtime's inbox is its store's; a Temporal shard's, its workflow's.
    tasks: TaskInbox = getattr(runtime, "task_inbox", None) or StoreInbox(runtime)

    async def inbox() -> list[dict[str, Any]]:
        return await run_in_threadpool(tasks.tasks)

    async def list_tasks(request: Request) -> Response:
        return answer({"tasks": await inbox()})

    async def claim(request: Request) -> Response:
        key = request.path_params["key"]
        body = await json_body(request)
        who = body.get("by") if isinstance(body, dict) else None
        if not isinstance(who, str) or not who.strip():
            return problem(HTTPStatus.BAD_REQUEST, 'say who claims the task: {"by": NAME}', "by")
        if surrogate(who) is not None or "\x00" in who:  # the task table keeps neither (PostgreSQL: no NUL)
            return problem(
                HTTPStatus.BAD_REQUEST, "by: a name without lone surrogates or NUL characters", "by"
            )
        wrong = name_problem("by", who, staff=True)  # kept with the task, shown in the inbox
        if wrong is not None:
            return problem(HTTPStatus.BAD_REQUEST, wrong, "by")
        if await run_in_threadpool(tasks.task, key) is None:
            return problem(
                HTTPStatus.NOT_FOUND, f"no open task '{key}' (done, past its deadline, or unknown)"
            )
        holder = await run_in_threadpool(tasks.claim, key, who)
        if holder != who:
            return problem(HTTPStatus.CONFLICT, f"task '{key}' is claimed by {holder}")
        return answer({"key": key, "claimed_by": who})

    # A Temporal shard retries actions itself and parks none: it has no `parked`.
    parks = callable(getattr(runtime, "parked", None)) and callable(getattr(runtime, "requeue", None))
    no_parking = "this service's engine (Temporal) retries actions itself and parks none"

    async def list_parked(request: Request) -> Response:
        if not parks:
            return problem(HTTPStatus.NOT_IMPLEMENTED, no_parking)
        rows = await run_in_threadpool(runtime.parked, runtime.shard)
        tz = timeutil.zone(zone())
        return answer({"parked": [parked_view(r, tz) for r in rows]})

    async def requeue(request: Request) -> Response:
        if not parks:
            return problem(HTTPStatus.NOT_IMPLEMENTED, no_parking)
        key = request.path_params["key"]
        if not await run_in_threadpool(runtime.requeue, key, runtime.shard):
            return problem(HTTPStatus.NOT_FOUND, f"no parked action '{key}'")
        return answer({"key": key, "status": "pending"})

    async def done(request: Request) -> Response:
        key = request.path_params["key"]
        task = await run_in_threadpool(tasks.task, key)
        if task is None:
            return problem(
                HTTPStatus.NOT_FOUND, f"no open task '{key}' (done, past its deadline, or unknown)"
            )
        if task["status"] == "escalated" or task.get("instead_of"):
            # No flow waits on it (it went on at the deadline, or never waited): done is staff's
            # word, kept with the claims.
            await run_in_threadpool(tasks.finish, key)
            return answer({"key": key, "status": "done"})
        if _past(task.get("deadline"), runtime):
            # Its timer is due and the loop's next turn takes `else`, as the engine would at the
            # event: the `task_done` was answered 202 (listing the else's sends) and marked the
            # task done, so staff read their late click as in time and an escalation was hidden.
            return problem(
                HTTPStatus.CONFLICT,
                f"task '{key}' passed its deadline ({task['deadline']}) before it was marked done: "
                "its flow takes its else steps; if the policy escalates tasks, it stays in the inbox "
                "as escalated, to be marked done there",
            )
        status, body = await run_in_threadpool(
            service.submit, {"kind": "task_done", "data": {"task": key}, "id": f"task_done:{key}"}
        )
        await run_in_threadpool(tasks.finish, key)
        return answer({"key": key, **body}, status)

    return [
        # One route a path: a 405's `Allow` then names every method the path takes, not one route's.
        _id_route("/admin/groups/{group}", _by_method(put_group, get_group), ["PUT", "GET"]),
        Route("/admin/members/import", import_members, methods=["POST"]),
        _id_route("/admin/members/{member}", _by_method(put_member, get_member), ["PUT", "GET"]),
        Route("/admin/parked", list_parked, methods=["GET"]),
        Route("/admin/parked/{key}/requeue", requeue, methods=["POST"]),
        Route("/admin/tasks", list_tasks, methods=["GET"]),
        Route("/admin/tasks/{key}/claim", claim, methods=["POST"]),
        Route("/admin/tasks/{key}/done", done, methods=["POST"]),
    ]


def _past(deadline: str | None, runtime: Any) -> bool:
    """Whether a task's deadline (ISO 8601, as the inbox shows it) is past on the runtime's clock.
    At the deadline's own second a `task_done` is still in time, as the engine takes it."""
    clock = getattr(runtime, "clock", None)
    if deadline is None or clock is None:
        return False
    return dt.datetime.fromisoformat(deadline).timestamp() < float(clock.now())


async def _arriving(stream: AsyncIterator[bytes], idle: float) -> AsyncIterator[bytes]:
    """The chunks of `stream`; `BodyError` (408) once none has come for `idle` seconds."""
    chunks = aiter(stream)
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"no byte of the body came for {idle:g} s: the import stopped there; the lines "
                "before it are imported, send the rest again",
            ) from None
        yield chunk


def parked_view(row: OutboxRow, tz: ZoneInfo) -> dict[str, Any]:
    """A parked outbox row as the admin API shows it: the action as its executor got it (the log
    executor's JSON line), its tries and its last error."""
    return {
        "key": row.key,
        "kind": row.kind,
        "status": "parked",
        "attempts": row.attempts,
        "failures": row.failures,
        "error": row.error,
        "action": payload(Action(**row.action), executor_key(row), tz),
    }


def _id_route(path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    """A route whose last parameter is a group's or a member's id, which may hold a `/`."""
    route = Route(path, _with_id(endpoint, path[path.rindex("{") + 1 : -1]), methods=methods)
    # uvicorn (and httpx) hand the app the path percent-decoded: an id sent as `wx%2Fabc` reaches
    # the router as `wx/abc`, which `{member}` (one segment) does not match. Matched as Starlette's
    # `path` convertor it does; `route.path` stays the template the OpenAPI description names.
    route.path_regex, route.path_format, route.param_convertors = compile_path(path[:-1] + ":path}")
    return route


def _with_id(
    endpoint: Callable[[Request], Awaitable[Response]], name: str
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint, for a non-empty id only: `/admin/members/` names no member (404, as before)."""

    async def checked(request: Request) -> Response:
        if not request.path_params[name]:
            raise HTTPException(HTTPStatus.NOT_FOUND)
        return await endpoint(request)

    return checked


def _by_method(
    put: Callable[[Request], Awaitable[Response]], get: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that hands PUT to `put` and GET (or HEAD) to `get`."""

    async def endpoint(request: Request) -> Response:
        return await (put if request.method == "PUT" else get)(request)

    return endpoint


class StoreInbox:
    """The task inbox of an in-process runtime: task actions from its store's outbox, claims and
    done marks in its store's task table (`store_tasks.py`)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def tasks(self) -> list[dict[str, Any]]:
        """The inbox, as `admin_views.inbox_tasks` makes it, from the outbox's staff rows only."""
        store, shard = self.runtime.store, self.runtime.shard
        rows = {(r.kind, r.key): r.action for r in store.staff_actions(shard)}
        return inbox_tasks(self.runtime.look("tasks", ""), rows, self._marks())

    def task(self, key: str) -> dict[str, Any] | None:
        """The task keyed `key`, from its own outbox rows and mark (None: not in the inbox)."""
        rows = {(r.kind, r.key): r.action for r in self.runtime.store.staff_actions(self.runtime.shard, key)}
        return inbox_task(key, self.runtime.look("tasks", key), rows, self._marks(key))

    def _marks(self, key: str | None = None) -> dict[str, dict[str, Any]]:
        marks = self.runtime.store.task_marks(self.runtime.shard, key)
        return {k: {"claimed_by": m.claimed_by, "done": m.done} for k, m in marks.items()}

    def claim(self, key: str, who: str) -> str:
        """Claim a task for `who` unless someone holds it; who holds it now."""
        return str(self.runtime.store.claim_task(self.runtime.shard, key, who))

    def finish(self, key: str) -> None:
        """Mark a task done."""
        self.runtime.store.finish_task(self.runtime.shard, key)
