"""The RateLimiter port in Redis: one token bucket per key, refilled continuously by Redis's clock, in one Lua
step."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE, call_key
from bot.adapters.redis.scripts import lua_script

# KEYS: bucket, the call's own key   ARGV: capacity, tokens per ms
TAKE = lua_script("rate_take", "once")


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix
        self._take = client.register_script(TAKE)

    async def take(self, bucket: str, *, capacity: int, per_second: float) -> float:
        key = f"{self._p}:rate:{bucket}"
        with store_errors():
            wait_ms = await self._take(keys=[key, call_key(key)], args=[capacity, per_second / 1000])
        return float(wait_ms) / 1000
