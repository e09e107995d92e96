"""The scheduler's ports in Redis: the lead across replicas (``Leadership``: a key with a lease that
Redis expires, so a dead leader loses it within one lease whatever the clocks say) and what the
scheduler remembers when the lead moves (``SchedulerMemory``: one hash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE
from bot.adapters.redis.scripts import lua_script

LEAD = lua_script("lead")
RESIGN = lua_script("resign")


class RedisLeadership:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE, job: str = "scheduler") -> None:
        self._redis: Any = client
        self._key = f"{prefix}:lead:{job}"
        self._lead = self._redis.register_script(LEAD)
        self._resign = self._redis.register_script(RESIGN)

    async def hold(self, holder: str, lease: timedelta) -> bool:
        with store_errors():
            return bool(await self._lead(keys=[self._key], args=[holder, max(1, int(lease.total_seconds() * 1000))]))

    async def release(self, holder: str) -> None:
        with store_errors():
            await self._resign(keys=[self._key], args=[holder])

    async def holder(self) -> str | None:
        with store_errors():
            value = await self._redis.get(self._key)
        return str(value) if value is not None else None


class RedisSchedulerMemory:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._key = f"{prefix}:lifecycle"

    async def recall(self, name: str) -> str | None:
        with store_errors():
            value = await self._redis.hget(self._key, name)
        return str(value) if value is not None else None

    async def remember(self, name: str, value: str) -> None:
        with store_errors():
            await self._redis.hset(self._key, name, value)
