"""The Freezes port in Redis: one key per domain, a JSON value, and an expiry at the freeze's end, so a
freeze lifts by itself even if nobody thaws it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE
from bot.domain.approvals import Freeze
from bot.domain.model import dns_name


class RedisFreezes:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix

    def _key(self, domain: str) -> str:
        return f"{self._p}:freeze:{dns_name(domain)}"

    async def put(self, freeze: Freeze) -> None:
        value = {
            "domain": freeze.domain,
            "until": freeze.until.isoformat(),
            "by": freeze.by,
            "reason": freeze.reason,
            "at": freeze.at.isoformat(),
        }
        with store_errors("the freeze was not recorded"):
            await self._redis.set(self._key(freeze.domain), json.dumps(value), exat=int(freeze.until.timestamp()) + 1)

    async def get(self, domain: str, at: datetime) -> Freeze | None:
        with store_errors():
            raw = await self._redis.get(self._key(domain))
        if raw is None:
            return None
        data = json.loads(raw)
        freeze = Freeze(
            data["domain"],
            datetime.fromisoformat(data["until"]),
            data["by"],
            data["reason"],
            datetime.fromisoformat(data["at"]),
        )
        return freeze if freeze.until > at else None

    async def remove(self, domain: str) -> bool:
        with store_errors():
            return bool(await self._redis.delete(self._key(domain)))
