"""The ReplayGuard of the Slack listener in Redis: a request's (timestamp, signature) is remembered
for 10 minutes (twice Slack's 5-minute window), so a captured request sent again is refused.

Every request asks, so the checks go out together (``batching.GroupWriter``): a burst in a few
pipelines instead of one round trip each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.batching import GroupWriter
from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE

REMEMBER_SECONDS = 600


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix
        self._checks = GroupWriter(self._write)

    async def first_time(self, timestamp: str, signature: str) -> bool:
        key = f"{self._p}:seen:{hashlib.sha256(f'{timestamp}:{signature}'.encode()).hexdigest()[:40]}"
        return await self._checks.submit(key)

    async def _write(self, keys: Sequence[str]) -> list[bool]:
        with store_errors("the request was not checked for a replay"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, "1", nx=True, ex=REMEMBER_SECONDS)
                replies = await pipe.execute()
        return [bool(reply) for reply in replies]
