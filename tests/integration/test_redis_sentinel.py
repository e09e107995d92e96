"""Redis with Sentinel, on real processes: a primary, a replica and three sentinels on loopback. The bot
finds the primary through the sentinels and follows a failover by itself, without a restart; what it
recorded and the replica held survives the primary's SIGKILL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kerberos_sandbox.redis_ha import Sentinels

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import StoreUnavailable
from tests.contracts.test_approval_store import new_request


@pytest.fixture
async def sentinels(tmp_path: Path) -> AsyncIterator[Sentinels]:
    ha = Sentinels(tmp_path)
    await ha.start()
    yield ha
    await ha.stop()


async def test_the_bot_finds_the_primary_through_the_sentinels_and_follows_a_failover(sentinels: Sentinels) -> None:
    client = connect(sentinels.url)
    store = RedisApprovalStore(client, f"kbot-{uuid.uuid4().hex[:6]}")
    try:
        request = new_request()
        await store.create(request)
        assert (await store.approve(request.id, "U0BOB", datetime.now(UTC))).verdict == Verdict.APPROVED
        assert await client.wait(1, 2000) == 1  # the replica holds it
        first = await sentinels.primary_port()
        assert first == sentinels.primary.port

        await sentinels.primary.kill()  # SIGKILL: the sentinels promote the replica
        loop = asyncio.get_running_loop()
        started, followed = loop.time(), None
        while loop.time() - started < 10:
            try:
                await store.create(new_request())  # a write: only the primary takes it
                followed = loop.time() - started
                break
            except StoreUnavailable:
                await asyncio.sleep(0.2)
        assert followed is not None, "the bot did not follow the failover within 10 s"
        assert await sentinels.primary_port() == sentinels.replica.port
        kept = await store.get(request.id)
        assert (
            kept is not None
            and kept.state == RequestState.APPROVED
            and [a.approver for a in kept.approvals] == ["U0BOB"]
        )
    finally:
        await store.close()
