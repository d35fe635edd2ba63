"""The admin API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

if TYPE_CHECKING:
    from sopdsl.live.service import Service


def admin_routes(service: Service, json_body: Callable[[Request], Awaitable[Any]]) -> list[Route]:
    """The admin routes."""
    return []


PATHS: dict[str, Any] = {}
