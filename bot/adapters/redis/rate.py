"""The RateLimiter port in Redis: one token bucket per key, refilled continuously, in one Lua step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors

# KEYS: bucket   ARGV: capacity, tokens per ms, now_ms
TAKE = """
local capacity, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = "kerberos-bot") -> None:
        self._redis: Any = client
        self._p = prefix
        self._take = client.register_script(TAKE)

    async def take(self, bucket: str, *, capacity: int, per_second: float, at: datetime) -> float:
        with store_errors():
            wait_ms = await self._take(
                keys=[f"{self._p}:rate:{bucket}"],
                args=[capacity, per_second / 1000, int(at.timestamp() * 1000)],
            )
        return float(wait_ms) / 1000
