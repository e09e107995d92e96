"""The ReplayGuard of the Slack listener in Redis: a request's (timestamp, signature) is remembered
for 10 minutes (twice Slack's 5-minute window), so a captured request sent again is refused.

Every request asks, so the checks go out together (``batching.GroupWriter``): a burst in a few calls of
one script (``lua/first_seen.lua``) instead of one round trip each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.batching import GroupWriter
from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE, call_key
from bot.adapters.redis.scripts import lua_script

REMEMBER_SECONDS = 600


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix
        self._checks = GroupWriter(self._write)
        self._first_seen = self._redis.register_script(lua_script("first_seen", "once"))

    async def first_time(self, timestamp: str, signature: str) -> bool:
        key = f"{self._p}:seen:{hashlib.sha256(f'{timestamp}:{signature}'.encode()).hexdigest()[:40]}"
        return await self._checks.submit(key)

    async def _write(self, keys: Sequence[str]) -> list[bool]:
        # one script for the batch: a pipeline of SETs costs the event loop a parse and an await per reply
        with store_errors("the request was not checked for a replay"):
            replies = await self._first_seen(keys=[call_key(f"{self._p}:seen"), *keys], args=[REMEMBER_SECONDS])
        return [bool(reply) for reply in replies]
