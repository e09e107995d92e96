"""The approvers' browser sign-ins waiting for their callback (``SignInTickets``), in Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE, call_key
from bot.adapters.redis.scripts import lua_script


class RedisSignInTickets:
    """Implements ``bot.domain.verification.SignInTickets``: browser sign-ins waiting for their
    callback, each taken at most once (GET, DEL and the used-marker in one script). The ticket is
    signed by the service; this store only keeps it until it expires."""

    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix
        self._take = self._redis.register_script(lua_script("take_ticket", "once"))

    def _key(self, state: str) -> str:
        return f"{self._p}:signin:{state}"

    def _used(self, state: str) -> str:
        return f"{self._p}:signin-used:{state}"

    async def put(self, state: str, ticket: str, ttl: timedelta) -> None:
        with store_errors("the sign-in link was not made"):
            await self._redis.set(self._key(state), ticket, px=max(1, int(ttl.total_seconds() * 1000)), nx=True)

    async def take(self, state: str, remember: timedelta) -> str | None:
        with store_errors("the sign-in was not recorded"):
            call = call_key(f"{self._p}:signin-take")  # beside the tickets, not among them
            keys = [self._key(state), self._used(state), call]
            ticket = await self._take(keys=keys, args=[max(1, int(remember.total_seconds() * 1000))])
        return ticket.decode() if isinstance(ticket, bytes) else ticket

    async def taken(self, state: str) -> str | None:
        with store_errors():
            ticket = await self._redis.get(self._used(state))
        return ticket.decode() if isinstance(ticket, bytes) else ticket
