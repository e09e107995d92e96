"""The scheduler's ports: the lead (one holder at a time, lapsing when not renewed), its memory, and the
domains' freezes;
the in-memory fakes and the Redis adapters (real Redis, a prefix of their own) honour the same contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.redis.client import connect
from bot.adapters.redis.freezes import RedisFreezes
from bot.adapters.redis.lifecycle import RedisLeadership, RedisSchedulerMemory
from bot.domain.approvals import Freeze
from bot.domain.ports import Freezes, Leadership, SchedulerMemory
from tests.support.fakes import FakeFreezes, FakeLeadership, FakeSchedulerMemory
from tests.support.redis_keys import REDIS_URL

SHORT = timedelta(milliseconds=300)


@pytest.fixture(params=["fake", "redis"])
async def leadership(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Leadership]:
    if request.param == "fake":
        yield FakeLeadership(lambda: datetime.now(UTC))
        return
    client = connect(REDIS_URL)
    yield RedisLeadership(client, prefix)
    await client.aclose()


@pytest.fixture(params=["fake", "redis"])
async def memory(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[SchedulerMemory]:
    if request.param == "fake":
        yield FakeSchedulerMemory()
        return
    client = connect(REDIS_URL)
    yield RedisSchedulerMemory(client, prefix)
    await client.aclose()


async def test_one_holder_at_a_time_and_the_holder_keeps_it(leadership: Leadership) -> None:
    assert await leadership.hold("w1", timedelta(seconds=5))
    assert not await leadership.hold("w2", timedelta(seconds=5))
    assert await leadership.hold("w1", timedelta(seconds=5))  # renewed
    assert not await leadership.hold("w2", timedelta(seconds=5))


async def test_a_lead_not_renewed_lapses_and_another_takes_it(leadership: Leadership) -> None:
    assert await leadership.hold("w1", SHORT)
    taken: list[bool] = []

    async def second_takes() -> bool:
        taken.append(await leadership.hold("w2", timedelta(seconds=5)))
        return taken[-1]

    for _ in range(200):  # w1 died: nothing renews its lease
        if await second_takes():
            break
        await asyncio.sleep(0.05)  # polling the lead: nothing signals its lapse
    assert taken[-1] and len(taken) > 1  # not at once: only once the lease lapsed
    assert not await leadership.hold("w1", SHORT)


async def test_released_by_its_holder_only(leadership: Leadership) -> None:
    assert await leadership.hold("w1", timedelta(seconds=5))
    await leadership.release("w2")  # not theirs: nothing happens
    assert not await leadership.hold("w2", timedelta(seconds=5))
    await leadership.release("w1")
    assert await leadership.hold("w2", timedelta(seconds=5))


async def test_memory_recalls_what_it_was_told(memory: SchedulerMemory) -> None:
    assert await memory.recall("cadence:contoso.test") is None
    await memory.remember("cadence:contoso.test", '{"key_version": 3}')
    await memory.remember("cadence:contoso.test", '{"key_version": 4}')
    assert await memory.recall("cadence:contoso.test") == '{"key_version": 4}'


@pytest.fixture(params=["fake", "redis"])
async def freezes(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Freezes]:
    if request.param == "fake":
        yield FakeFreezes()
        return
    client = connect(REDIS_URL)
    yield RedisFreezes(client, prefix)
    await client.aclose()


async def test_a_freeze_holds_until_its_end_and_can_be_lifted(freezes: Freezes) -> None:
    now = datetime.now(UTC)
    freeze = Freeze("contoso.test", now + timedelta(hours=2), "U0BOB", "year-end change freeze", now)
    await freezes.put(freeze)
    assert await freezes.get("contoso.test", now) == freeze
    assert await freezes.get("fabrikam.test", now) is None
    assert await freezes.get("contoso.test", now + timedelta(hours=3)) is None  # over by itself
    assert await freezes.remove("contoso.test") and not await freezes.remove("contoso.test")
    assert await freezes.get("contoso.test", now) is None
