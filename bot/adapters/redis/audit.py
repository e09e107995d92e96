"""The AuditTrail port on the audit stream (``P:audit``) and its readers' cursors (``P:audit-cursor``, a hash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.codec import audit_entry
from bot.adapters.redis.keys import KEYSPACE
from bot.domain.approvals import AuditEntry

PAGE = 1000


class RedisAuditTrail:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._stream = f"{prefix}:audit"
        self._cursors = f"{prefix}:audit-cursor"

    async def after(self, cursor: str | None, count: int) -> list[AuditEntry]:
        start = f"({cursor}" if cursor else "-"
        with store_errors():
            entries = await self._redis.xrange(self._stream, min=start, max="+", count=count)
        return [audit_entry(entry_id, fields) for entry_id, fields in entries]

    async def between(self, since: datetime, until: datetime) -> list[AuditEntry]:
        # the whole stream, page by page, by each entry's own time: the ids are Redis's clock, which need not
        # be the bot's (and the trail is bounded by its retention)
        found: list[AuditEntry] = []
        start = "-"
        with store_errors():
            while True:
                page = await self._redis.xrange(self._stream, min=start, max="+", count=PAGE)
                found += [e for e in (audit_entry(i, f) for i, f in page) if since <= e.at < until]
                if len(page) < PAGE:
                    return found
                start = f"({page[-1][0]}"

    async def cursor(self, reader: str) -> str | None:
        with store_errors():
            value = await self._redis.hget(self._cursors, reader)
        return str(value) if value else None

    async def save_cursor(self, reader: str, cursor: str) -> None:
        with store_errors("the forwarder sends the last entries again"):
            await self._redis.hset(self._cursors, reader, cursor)
