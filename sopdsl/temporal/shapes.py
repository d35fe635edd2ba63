"""What crosses Temporal's boundaries: a shard workflow's input, an action's activity input, names.

Input and output: plain dataclasses of JSON values, which Temporal's default converter writes;
the engine's snapshot travels beside them as its own `bytes` argument (no base64). Imported by
the workflow (inside its sandbox), the worker and the client alike, so it imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sopdsl.errors import SopdslError
from sopdsl.live.retention import TEMPORAL_DAYS

WORKFLOW = "sopdsl.shard"  # the workflow type's name
ACTIVITY = "sopdsl.execute"  # the activity that hands one action to its executor (a retry)
BATCH = "sopdsl.execute_batch"  # the activity that hands the actions of one step to their executors
BATCH_MAX = 100  # actions per batch: a batch runs its executors one after another
ENTRIES = "entries"  # the signal that carries journal entries (events, groups, members, plans, time)
FLUSH = "flush"  # the update that answers once everything received is applied and executed
STATUS = "status"  # the query of a shard's counters
LOOK = "look"  # the update that answers a view of the engine (the admin API's) once the inbox is applied
TASKS = "tasks"  # the update that claims a staff task or marks it done (the admin API's task inbox)
INBOX = "inbox"  # the `look` view of the task inbox (beside `admin_views.VIEWS`)
FIGURES = "figures"  # the `look` view of a report's facts, "LO HI" engine times (`live/report.py`)
# The `look` view of the engine times the shard's figures span: the days a report of none names.
SPAN = "figures span"
TASK_QUEUE = "sopdsl"

WALL, SIGNALLED = "wall", "signalled"  # whose clock drives the engine: Temporal's, or `advance` entries


class TemporalUrlError(SopdslError, ValueError):
    """A `--engine` URL that is not `temporal://host:port/namespace`."""


@dataclass(frozen=True)
class Target:
    """Where a Temporal server is: `host:port` and the namespace."""

    address: str
    namespace: str


def parse_url(url: str) -> Target:
    """`temporal://host:port/namespace` (namespace `default` when left out) as a `Target`."""
    parts = urlsplit(url)
    if parts.scheme != "temporal" or not parts.hostname:
        raise TemporalUrlError(f"expected temporal://host:port/namespace, got {url!r}")
    try:
        port = parts.port or 7233
    except ValueError:
        raise TemporalUrlError(f"the port of {url!r} is not a number") from None
    namespace = parts.path.strip("/") or "default"
    if "/" in namespace:
        raise TemporalUrlError(f"{url!r} names more than a namespace after the address")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Target(f"{host}:{port}", namespace)


def workflow_id(shard: str) -> str:
    """The id of a shard's workflow: one workflow per shard, found by name."""
    return f"sopdsl-shard-{shard}"


@dataclass
class Retry:
    """The executors' retry policy, as Temporal retries an action's activity (`live/retry.py`'s numbers)."""

    attempts: int = 5
    base: float = 30.0
    cap: float = 3600.0
    # Seconds one executor call may take (a webhook retries inside it); also how long an action
    # whose worker died waits before another worker tries it.
    timeout: float = 300.0


@dataclass
class ShardInput:
    """A shard workflow's input: its settings, and what one run hands the next at continue-as-new."""

    shard: str
    plan: str  # the hash of the plan the shard runs
    plans: dict[str, str]  # plan texts by hash: the running one and those flows still finish on
    start: int  # the engine's start time (epoch seconds)
    seed: int = 0
    clock: str = WALL
    retry: Retry = field(default_factory=Retry)
    dry_run: bool = False
    continue_after: int = 10_000  # history events before a new run (Temporal's limit is 51,200)
    # Days of figures kept by member and by 15-minute slot; older ones by day (`live/retention.py`).
    keep_days: float = TEMPORAL_DAYS
    seen: dict[str, int] = field(default_factory=dict)  # entry ids taken, with their time
    inbox: list[dict[str, Any]] = field(default_factory=list)  # entries received, not applied yet
    outbox: list[ActionCall] = field(default_factory=list)  # actions decided, not yet executed
    totals: dict[str, int] = field(default_factory=dict)
    parked: list[dict[str, Any]] = field(default_factory=list)  # the latest actions given up on
    # The task inbox: task and escalate actions still shown, by key, and staff's claims and done marks.
    task_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_marks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The per-playbook live figures (`store_figures.PlaybookFacts.rows`): sums, arms, touches, goals.
    figures: dict[str, list[list[Any]]] = field(default_factory=dict)


@dataclass
class ActionCall:
    """One action for its executor: the action's fields and its idempotency key."""

    shard: str
    key: str  # the key the executor gets: the action's, prefixed by the shard unless it is `default`
    action: dict[str, Any]
    dry_run: bool = False


def order_of(call: ActionCall) -> str:
    """Whose actions go out one at a time, in order: the member's, else the group's."""
    return str(call.action.get("member") or f"group:{call.action.get('group') or '-'}")


@dataclass
class Failed:
    """An action whose executor failed in a batch: the error, and whether a retry may succeed."""

    key: str
    error: str
    permanent: bool = False
    retry_after: float | None = None


@dataclass
class BatchResult:
    """What a batch did: the keys done, the failures, and the keys not tried because an earlier
    action of the same member (or group) failed."""

    done: list[str] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    untried: list[str] = field(default_factory=list)


def executor_key(shard: str, key: str) -> str:
    """The key an executor gets, as the outbox gives it (`live/outbox.py`)."""
    return key if shard == "default" else f"{shard}/{key}"
