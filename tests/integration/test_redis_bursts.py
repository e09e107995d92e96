"""A burst of clicks is queued for a Redis connection, never refused: redis-py's own pool refuses a command
once 100 connections are in use ("Too many connections"), which the bot answered as "Redis is unavailable"
to clicks of fifty people at once. On the real Redis, a Redis Cluster and Sentinel, each started here."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from kerberos_sandbox.redis_ha import LocalCluster, Sentinels

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Verdict
from tests.contracts.test_approval_store import new_request
from tests.support.redis_keys import cluster_prefix

BURST = 300  # concurrent clicks on as many requests: three times the connections redis-py allows by default


async def burst_of_clicks(url: str, prefix: str) -> list[Verdict | str]:
    """Each click's verdict, or what was raised instead (named, so a failure says why)."""
    store = RedisApprovalStore(connect(url), prefix)
    try:
        requests = [new_request() for _ in range(BURST)]
        await asyncio.gather(*(store.create(r) for r in requests))
        now = datetime.now(UTC)
        results = await asyncio.gather(*(store.approve(r.id, "U0BOB", now) for r in requests), return_exceptions=True)
        return [r.verdict if not isinstance(r, BaseException) else f"{type(r).__name__}: {r}" for r in results]
    finally:
        client = connect(url)
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()
        await store.close()


async def test_a_burst_of_clicks_on_one_redis_is_answered_every_one() -> None:
    verdicts = await burst_of_clicks("redis://127.0.0.1:6379/0", f"kbot-burst-{uuid.uuid4().hex[:6]}")
    assert verdicts == [Verdict.APPROVED] * BURST, sorted({str(v) for v in verdicts if v != Verdict.APPROVED})


async def test_a_burst_of_clicks_through_sentinel_is_answered_every_one(tmp_path: Path) -> None:
    ha = Sentinels(tmp_path)
    await ha.start()
    try:
        verdicts = await burst_of_clicks(ha.url, f"kbot-burst-{uuid.uuid4().hex[:6]}")
    finally:
        await ha.stop()
    assert verdicts == [Verdict.APPROVED] * BURST, sorted({str(v) for v in verdicts if v != Verdict.APPROVED})


async def test_a_burst_of_clicks_on_a_cluster_is_answered_every_one(redis_cluster: LocalCluster) -> None:
    verdicts = await burst_of_clicks(redis_cluster.url, cluster_prefix())
    assert verdicts == [Verdict.APPROVED] * BURST, sorted({str(v) for v in verdicts if v != Verdict.APPROVED})
