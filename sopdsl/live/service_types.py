"""What the service (`service.py`) takes and raises: the runtime and receiver it serves, the
errors it answers with, and the callback of its submissions. Apart so that `service.py` keeps to
the serving itself; `service.py` exports all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # only named in annotations: the HTTP fronts import this, and not the engine
    from sopdsl.engine.actions import Action
    from sopdsl.live.runtime import Fed
    from sopdsl.live.service import Service


Answered = Callable[[tuple[int, dict[str, Any]] | None, BaseException | None], None]
"""`Service.submit_soon`'s callback: the HTTP status and JSON body, or the error to answer for."""


class ShuttingDownError(Exception):
    """An event arrived after the service began to stop; it was not fed (answered 503)."""


class RuntimeLike(Protocol):
    """What the service needs of a runtime (`sopdsl.live.runtime.Runtime` is one).

    `feed_batch` and `tick` are called from different threads, so the runtime must serialize them.
    """

    shard: str
    executors: Any

    def feed_batch(self, events: Iterable[Mapping[str, Any]]) -> Fed:
        """Take several events at once, all or none; the actions they caused and the duplicates.

        A runtime with `many_shards = True` also takes `shard=NAME` (`Runtime.feed_batch`)."""
        ...

    def tick(self, now: int | None = None) -> list[Action]:
        """Run the work due by now; return the actions it caused."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the metrics endpoint."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class Receiver(Protocol):
    """A platform's callback endpoint mounted on the service (`sopdsl.live.wecom.WeComCallback` is one).

    It authenticates its requests itself (by the platform's signature), so the bearer-token check
    skips its `path`.
    """

    path: str

    def routes(self, service: Service) -> list[Any]:
        """Its Starlette routes, feeding `service`."""
        ...


class RejectedEventError(Exception):
    """An event the runtime refused: the message, the field at fault if known, and its place."""

    def __init__(self, message: str, field: str | None, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.index = index

    def to_json(self) -> dict[str, Any]:
        """The error body of a 400 answer."""
        body: dict[str, Any] = {"error": self.message, "field": self.field}
        if self.index is not None:
            body["index"] = self.index
        return body
