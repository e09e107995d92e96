"""Posts to one channel are paced as Slack limits them (about one a second per channel, short bursts
pass); other channels are not held up; the order of a channel's posts is kept; replicas keep one pace between
them through the store they share, and each its own where the store is down. On a fake clock."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.memory.ports import MemoryRateLimiter
from bot.adapters.slack.web import ChannelPacing, SharedChannelPacing
from bot.domain.errors import StoreUnavailable


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_a_burst_passes_then_one_post_a_second() -> None:
    time = FakeTime()
    pacing = ChannelPacing(per_second=1.0, burst=3, clock=time.clock, sleep=time.sleep)
    waits = [await pacing.wait("C0PLATFORM") for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert await pacing.wait("C0OTHER") == 0.0  # another channel has its own bucket
    time.now += 10  # quiet for a while: the burst is back
    assert [await pacing.wait("C0PLATFORM") for _ in range(3)] == [0.0, 0.0, 0.0]


async def test_concurrent_posts_to_one_channel_wait_their_turn() -> None:
    time = FakeTime()
    pacing = ChannelPacing(per_second=2.0, burst=1, clock=time.clock, sleep=time.sleep)
    waits = await asyncio.gather(*(pacing.wait("C0PLATFORM") for _ in range(4)))
    assert sorted(waits) == [0.0, 0.5, 0.5, 0.5] and sum(time.slept) == 1.5


class FakeWallTime(FakeTime):
    """The wall clock the shared buckets are refilled by, moving with the fake time."""

    def wall(self) -> datetime:
        return datetime(2026, 12, 7, tzinfo=UTC) + timedelta(seconds=self.now)


async def test_two_replicas_keep_one_pace_between_them_through_the_shared_store() -> None:
    time = FakeWallTime()
    # the contract-tested stand-in for the Redis buckets every replica shares, refilled by the store's clock
    shared = MemoryRateLimiter(clock=time.wall)
    replicas = [
        SharedChannelPacing(shared, per_second=1.0, burst=3, clock=time.clock, sleep=time.sleep) for _ in range(2)
    ]
    waits = [await replicas[turn % 2].wait("C0PLATFORM") for turn in range(6)]
    # three at once, then one a second between them (each alone would have let its first three through)
    assert waits[:3] == [0.0, 0.0, 0.0] and all(wait > 0 for wait in waits[3:])
    assert sum(time.slept) == pytest.approx(3.0)
    assert await replicas[0].wait("C0OTHER") == 0.0  # another channel has its own bucket


class DownStore:
    async def take(self, bucket: str, *, capacity: int, per_second: float) -> float:
        raise StoreUnavailable("Redis did not answer")


async def test_without_the_store_each_replica_paces_its_own_posts(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeWallTime()
    pacing = SharedChannelPacing(DownStore(), per_second=1.0, burst=3, clock=time.clock, sleep=time.sleep)
    with caplog.at_level(logging.INFO, logger="bot.adapters.slack.web"):
        waits = [await pacing.wait("C0PLATFORM") for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0]  # as ChannelPacing alone
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "paced by this process alone" in said[0]  # said once, not at every post
