"""The ReplayGuard of the Slack listener in Redis: a request's (timestamp, signature) is remembered
for 10 minutes (twice Slack's 5-minute window), so a captured request sent again is refused.

Every request asks, so the checks of one turn of the event loop (a burst) go out in one pipeline:
one round trip for all of them instead of one each.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE

REMEMBER_SECONDS = 600


class RedisReplayGuard:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        self._redis: Any = client
        self._p = prefix
        self._batch: list[str] | None = None
        self._answers: asyncio.Future[list[bool]] | None = None
        self._writers: set[asyncio.Task[None]] = set()

    async def first_time(self, timestamp: str, signature: str) -> bool:
        key = f"{self._p}:seen:{hashlib.sha256(f'{timestamp}:{signature}'.encode()).hexdigest()[:40]}"
        if self._batch is None or self._answers is None:
            self._batch, self._answers = [], asyncio.get_running_loop().create_future()
            writer = asyncio.create_task(self._write(self._batch, self._answers))
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        position = len(self._batch)
        self._batch.append(key)
        answers = await asyncio.shield(self._answers)  # one caller cancelled must not fail the others
        return answers[position]

    async def _write(self, batch: list[str], answers: asyncio.Future[list[bool]]) -> None:
        await asyncio.sleep(0)  # the requests of this turn of the loop join the batch
        self._batch = self._answers = None
        try:
            with store_errors("the request was not checked for a replay"):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in batch:
                        pipe.set(key, "1", nx=True, ex=REMEMBER_SECONDS)
                    replies = await pipe.execute()
        except Exception as exc:
            answers.set_exception(exc)
            answers.exception()  # every caller gets it through first_time(); nothing is left unretrieved
        else:
            answers.set_result([bool(r) for r in replies])
