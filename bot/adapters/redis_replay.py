"""The ReplayGuard of the Slack listener in Redis: a request's (timestamp, signature) is remembered
for 10 minutes (twice Slack's 5-minute window), so a captured request sent again is refused."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis_client import store_errors

REMEMBER_SECONDS = 600


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis, prefix: str = "kerberos-bot") -> None:
        self._redis: Any = client
        self._p = prefix

    async def first_time(self, timestamp: str, signature: str) -> bool:
        digest = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()[:40]
        with store_errors("the request was not checked for a replay"):
            return bool(await self._redis.set(f"{self._p}:seen:{digest}", "1", nx=True, ex=REMEMBER_SECONDS))
