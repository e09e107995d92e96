"""Concurrent callers asking for the same thing share one computation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """While a computation for a key runs, later callers with that key await its result.

    A burst of identical requests thus costs one directory read (or one rendering), not one each.
    Once it finishes, the next caller starts afresh: nothing is cached beyond the flight.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(compute())
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        # shield: one caller giving up must not cancel the others' shared computation
        return await asyncio.shield(flight)
