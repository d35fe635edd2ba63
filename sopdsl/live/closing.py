"""A closed runtime refuses what would change its store, in plain words.

Input: whether a runtime is closed, and its store's URL. Output: nothing, or `RuntimeClosedError`.
Without it, an event fed after `close()` (a bot's webhook handler still running while the bot
shuts down) was taken by a memory store and never dispatched, or failed on SQLite with
`ProgrammingError: Cannot operate on a closed database`.
"""

from __future__ import annotations

from sopdsl.errors import EngineError
from sopdsl.live.redact import redact_url


class RuntimeClosedError(EngineError, RuntimeError):
    """The runtime was closed (`Runtime.close()`): it takes no more events, registrations or plan switches."""


def refuse_if_closed(closed: bool, store_url: str) -> None:
    """Raise `RuntimeClosedError` if `closed`: nothing is stored then."""
    if closed:
        raise RuntimeClosedError(
            "this runtime is closed (Runtime.close() was called), so nothing was stored: feed it to "
            f"a new Runtime opened on {redact_url(store_url)}"
        )
