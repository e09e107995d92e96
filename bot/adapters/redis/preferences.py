"""The NoticePreferences port in Redis: the users who turned their direct messages off, and those who opened
the bot's home page, a set each."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE


class RedisNoticePreferences:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._key = f"{prefix}:dm-muted"
        self._home = f"{prefix}:home-users"

    async def muted(self, user: str) -> bool:
        with store_errors():
            return bool(await self._redis.sismember(self._key, user))

    async def set_muted(self, user: str, muted: bool) -> None:
        with store_errors("your setting was not saved"):
            if muted:
                await self._redis.sadd(self._key, user)
            else:
                await self._redis.srem(self._key, user)

    async def remember_home(self, user: str) -> None:
        with store_errors():
            await self._redis.sadd(self._home, user)

    async def home_users(self) -> frozenset[str]:
        with store_errors():
            return frozenset(await self._redis.smembers(self._home))
