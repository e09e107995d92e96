"""Redis with Sentinel, on real processes: a primary, a replica and three sentinels on loopback. The bot
finds the primary through the sentinels and follows a failover by itself, without a restart; what it
recorded and the replica held survives the primary's SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
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
        # the sentinels' election is theirs (half a second to notice, a retry after six when a vote splits under
        # load); following the primary they name is the bot's, within a few seconds of it
        loop = asyncio.get_running_loop()
        started = loop.time()
        while await sentinels.primary_port() != sentinels.replica.port:
            assert loop.time() - started < 30, "the sentinels did not promote the replica within 30 s"
            await asyncio.sleep(0.2)
        promoted, followed = loop.time(), None
        while loop.time() - promoted < 5:
            try:
                await store.create(new_request())  # a write: only the primary takes it
                followed = loop.time() - promoted
                break
            except StoreUnavailable:
                await asyncio.sleep(0.2)
        assert followed is not None, "the bot did not follow the promoted primary within 5 s"
        kept = await store.get(request.id)
        assert (
            kept is not None
            and kept.state == RequestState.APPROVED
            and [a.approver for a in kept.approvals] == ["U0BOB"]
        )
    finally:
        await store.close()


async def test_a_primary_that_comes_back_demoted_is_left_for_the_new_one(sentinels: Sentinels) -> None:
    """What bites with redis-py's Sentinel client: its pooled connections to a primary that was stopped (not
    killed) stay open, and when it comes back the sentinels demote it to a replica; a write on those
    connections is answered READONLY, which the client takes as a lost connection, so the bot reconnects to
    the primary the sentinels name now instead of failing its writes."""
    client = connect(sentinels.url)
    store = RedisApprovalStore(client, f"kbot-{uuid.uuid4().hex[:6]}")
    try:
        await asyncio.gather(*(store.create(new_request()) for _ in range(5)))  # several pooled connections
        old = sentinels.primary.pid
        os.kill(old, signal.SIGSTOP)  # the sentinels see it down and promote the replica
        try:
            for _ in range(200):
                if await sentinels.primary_port() == sentinels.replica.port:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the sentinels never promoted the replica")
        finally:
            os.kill(old, signal.SIGCONT)  # back, and demoted by the sentinels
        old_primary = connect(sentinels.primary.url)
        try:
            for _ in range(300):  # the sentinels reconfigure it once they see it again (seconds, under load more)
                if (await old_primary.info("replication"))["role"] == "slave":
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the sentinels never demoted the old primary")
        finally:
            await old_primary.aclose()
        written = await asyncio.gather(*(store.create(new_request()) for _ in range(5)), return_exceptions=True)
        assert not [w for w in written if isinstance(w, BaseException)], written
        assert await client.info("replication") and (await client.info("replication"))["role"] == "master"
    finally:
        await store.close()
