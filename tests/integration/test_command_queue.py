"""The command queue on the real Redis: what goes in comes out once, to one worker, in bursts too."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.adapters.redis.client import connect
from bot.adapters.redis.commands import GROUP, RedisCommandQueue, entry_fields
from bot.domain.ports import DeferredCommand

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = connect(REDIS_URL)
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"
    redis.test_prefix = prefix  # type: ignore[attr-defined]
    yield redis
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        await redis.delete(key)
    await redis.aclose()


def queue_on(client: aioredis.Redis) -> RedisCommandQueue:
    return RedisCommandQueue(client, client.test_prefix)  # type: ignore[attr-defined]


def command(n: int = 0, text: str = "status contoso.test") -> DeferredCommand:
    return DeferredCommand(
        text=text,
        user_id=f"U{n:04d}",
        channel_id="C0OPS",
        reply_to=f"https://hooks.slack.test/commands/{n}",
        request_id=f"req{n}",
        queued_at=datetime(2026, 12, 1, 5, 0, n % 60, tzinfo=UTC),
    )


async def test_a_command_comes_out_as_it_went_in(client: aioredis.Redis) -> None:
    queue = queue_on(client)
    sent = command(7, text='status "contoso.test" -- with <markup> & quotes')
    await queue.put(sent)
    assert await queue.take("w1", count=10, block_ms=100) == [sent]


async def test_a_burst_is_written_whole_and_each_command_goes_to_one_worker(client: aioredis.Redis) -> None:
    queue = queue_on(client)
    sent = [command(n) for n in range(60)]
    await asyncio.gather(*(queue.put(c) for c in sent))  # one turn of the loop: one pipeline
    assert await client.xlen(queue.key) == 60

    async def drain(name: str) -> list[DeferredCommand]:
        got: list[DeferredCommand] = []
        while batch := await queue_on(client).take(name, count=7, block_ms=50):
            got += batch
        return got

    first, second = await asyncio.gather(drain("w1"), drain("w2"))
    taken = [c.request_id for c in first + second]
    assert sorted(taken) == sorted(c.request_id for c in sent)  # every one, none twice
    # at most once: taken means acknowledged, nothing waits to be redelivered
    assert (await client.xpending(queue.key, GROUP))["pending"] == 0
    assert await queue.take("w3", count=10, block_ms=50) == []


async def test_backlog_counts_what_no_worker_has_taken(client: aioredis.Redis) -> None:
    queue = queue_on(client)
    assert await queue.backlog() == 0
    for n in range(3):
        await queue.put(command(n))
    assert await queue.backlog() == 3
    await queue.take("w1", count=2, block_ms=50)
    assert await queue.backlog() == 1


async def test_commands_queued_before_any_worker_started_are_not_missed(client: aioredis.Redis) -> None:
    await queue_on(client).put(command(1))  # the serving process starts first
    assert [c.request_id for c in await queue_on(client).take("late", count=5, block_ms=50)] == ["req1"]


async def test_every_caller_of_a_failed_write_hears_of_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = connect(f"redis://127.0.0.1:{dead_port}/0")
    queue = RedisCommandQueue(dead, "kbot-test-dead")
    queue._group_ready = True  # the write itself fails, not the group creation
    results = await asyncio.gather(*(queue.put(command(n)) for n in range(5)), return_exceptions=True)
    assert len(results) == 5 and all(isinstance(r, RedisConnectionError) for r in results)
    await dead.aclose()


async def test_an_entry_written_to_the_stream_by_anyone_else_never_runs(client: aioredis.Redis) -> None:
    from bot.domain.integrity import Signer
    from bot.services.command_queue import SignedCommandQueue
    from bot.workers.commands import CommandWorker

    signer = Signer(b"q" * 32)
    raw = queue_on(client)
    queue = SignedCommandQueue(raw, signer)
    fresh = replace(command(1, "status contoso.test"), queued_at=datetime.now(UTC))
    await queue.put(fresh)  # the bot's own (makes the stream and its group)
    # a Redis writer's entries: a freeze in an approver's name, with the reply to an address of its choosing;
    # one unsigned, one with a MAC copied from the genuine entry
    [genuine] = [entry_fields(f) async for f in _entries(client, raw.key)]
    forged: dict[Any, Any] = {
        "text": "freeze contoso.test 2054-01-01 -- x",
        "user": "U0BOB",
        "channel": "C0PLATFORM",
        "reply_to": "https://attacker.example/collect",
        "request_id": "-",
        "queued_at": datetime.now(UTC).isoformat(),
        "team": "",
        "app": "",
    }
    await client.xadd(raw.key, forged)  # as entries were written before they were one JSON document
    await client.xadd(raw.key, {**forged, "mac": genuine["mac"]})
    await client.xadd(raw.key, {"entry": json.dumps({**forged, "mac": genuine["mac"]})})  # as they are now
    await client.xadd(raw.key, {"entry": "{not json"})
    ran: list[DeferredCommand] = []

    async def work(deferred: DeferredCommand) -> None:
        ran.append(deferred)

    worker = CommandWorker(work, queue, "w1", block_ms=50)
    for _ in range(5):
        await worker.run_once()
    await worker.drain()
    assert [c.text for c in ran] == ["status contoso.test"]  # only the bot's own entry ran


async def _entries(client: aioredis.Redis, key: str) -> AsyncIterator[dict[str, str]]:
    for _id, fields in await client.xrange(key) or []:
        yield {_text(k): _text(v) for k, v in (fields or {}).items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
