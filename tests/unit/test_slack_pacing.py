"""Posts to one channel are paced as Slack limits them (about one a second per channel, short bursts
pass); other channels are not held up; the order of a channel's posts is kept. On a fake clock."""

from __future__ import annotations

import asyncio

from bot.adapters.slack.web import ChannelPacing


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
