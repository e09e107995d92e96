"""The time by Redis's ``TIME``: the clock of the signed times (a request's creation and expiry, each
approval, each entry of its history), so every replica reads one clock whatever its host's says.

Reading it costs no round trip: the offset between Redis's clock and this host's is measured (half the
round trip either side) and measured again in the background once it is older than ``every``; until the
first measurement it is the host's own clock. The leases do not use it: their scripts read ``TIME`` itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _host_now() -> datetime:
    return datetime.now(UTC)


class RedisClock:
    def __init__(
        self,
        client: Any,
        *,
        every: timedelta = timedelta(seconds=30),
        host_clock: Callable[[], datetime] = _host_now,
    ) -> None:
        self._redis = client
        self._every = every
        self._host = host_clock
        self.offset = timedelta(0)  # Redis's clock minus this host's
        self._measured_at: datetime | None = None
        self._measuring: asyncio.Task[None] | None = None

    async def measure(self) -> timedelta:
        """Measure the offset now (at start, and whenever the last measurement is older than ``every``)."""
        before = self._host()
        seconds, micros = await self._redis.time()
        after = self._host()
        redis_now = datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=int(micros))
        self.offset = redis_now - (before + (after - before) / 2)
        self._measured_at = after
        return self.offset

    def __call__(self) -> datetime:
        now = self._host()
        if self._measured_at is None or now - self._measured_at >= self._every:
            self._measure_soon()
        return now + self.offset

    def _measure_soon(self) -> None:
        if self._measuring is not None and not self._measuring.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the event loop (a command line's own use): the last offset
            return
        self._measuring = loop.create_task(self._measure_quietly(), name="redis-clock")

    async def _measure_quietly(self) -> None:
        try:
            await self.measure()
        except (RedisError, OSError) as exc:
            # the last offset stays; the next read tries again (a Redis that does not answer refuses the
            # change itself with its own clear error)
            log.warning("could not read Redis's clock: %s", type(exc).__name__)
            self._measured_at = self._host() - self._every + timedelta(seconds=5)
