"""A burst of clicks is queued for a Redis connection, never refused: redis-py's own pool refuses a command
once 100 connections are in use ("Too many connections"), which the bot answered as "Redis is unavailable"
to clicks of fifty people at once. On the real Redis, a Redis Cluster and Sentinel, each started here."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis
from kerberos_sandbox.redis_ha import LocalCluster, Sentinels
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.adapters.redis.client import ClusterConnection, connect
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


async def test_a_write_on_a_connection_another_task_closed_is_a_lost_connection() -> None:
    # redis-py's cluster client closes a node's connections while other tasks are about to write on them; its own
    # connection then raises AttributeError (redis/redis-py#4287), which neither its retry nor store_errors knows
    for kind, raised in ((aioredis.Connection, AttributeError), (ClusterConnection, RedisConnectionError)):
        connection = kind(host="127.0.0.1", port=6379, socket_timeout=5.0)
        await connection.connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await connection.disconnect()  # what the other task did
        with pytest.raises(raised) as caught:
            await connection._send_packed_command([b"PING\r\n"])  # the write that came after
        # exactly ConnectionError: the cluster client retries only the error types it names, by identity
        assert kind is aioredis.Connection or type(caught.value) is RedisConnectionError


async def test_the_cluster_client_connects_with_the_bots_connection(redis_cluster: LocalCluster) -> None:
    client = connect(redis_cluster.url)
    try:
        await client.set(f"{cluster_prefix()}:probe", "1", ex=5)
        cluster = cast(RedisCluster, client)
        nodes = cluster.get_nodes()
        assert nodes and all(node.connection_class is ClusterConnection for node in nodes)
    finally:
        await client.aclose()
