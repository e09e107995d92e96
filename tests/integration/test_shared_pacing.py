"""Two replicas of the bot post to one channel through the Slack stand-in, their pace kept in the real Redis
they share: together no faster than Slack allows one bot, where each alone would have let its own burst through."""

from __future__ import annotations

import asyncio
import uuid

from kerberos_sandbox.slack_standin import SlackStandIn

from bot.adapters.redis.client import connect
from bot.adapters.redis.rate import RedisRateLimiter
from bot.adapters.slack.web import SharedChannelPacing, slack_web_client
from tests.support.redis_keys import REDIS_URL

PER_SECOND, BURST = 10.0, 2  # Slack's one a second, ten times faster: the same shape in a tenth of the time


async def test_two_replicas_post_to_a_channel_at_one_pace_between_them() -> None:
    redis = connect(REDIS_URL)
    prefix = f"kbot-pace-{uuid.uuid4().hex[:8]}"
    try:
        async with SlackStandIn() as slack:
            replicas = [slack_web_client(slack.bot_token, slack.api_url) for _ in range(2)]
            for replica in replicas:  # each its own process's client, one store between them
                replica.pacing = SharedChannelPacing(RedisRateLimiter(redis, prefix), PER_SECOND, BURST)

            async def post(replica: int, n: int) -> None:
                await replicas[replica].chat_postMessage(channel="C0PLATFORM", text=f"line {n}")

            await asyncio.gather(*(post(n % 2, n) for n in range(6)))
            times = sorted(c.at for c in slack.api_calls("chat.postMessage"))
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    assert len(times) == 6
    # the burst of two, then the other four a tenth of a second apart: at least 0.4 s from the first to the
    # last (each replica alone would have posted its three within 0.1 s)
    assert times[-1] - times[0] >= (6 - BURST) / PER_SECOND * 0.9
