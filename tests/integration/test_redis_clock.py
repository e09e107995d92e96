"""The signed times come from Redis's clock: replicas whose hosts' clocks differ read one time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.adapters.redis.client import connect
from bot.adapters.redis.clock import RedisClock
from bot.bootstrap.components import build_components
from bot.config import load_bot_config
from bot.services.status import utc_now

REDIS_URL = "redis://127.0.0.1:6379/0"


class HostClock:
    """A host's clock, off by ``skew`` from the true time."""

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew


async def redis_now(client: object) -> datetime:
    seconds, micros = await client.time()  # type: ignore[attr-defined]
    return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=int(micros))


async def test_two_replicas_whose_hosts_disagree_by_an_hour_read_one_time() -> None:
    client = connect(REDIS_URL)
    try:
        ahead = RedisClock(client, host_clock=HostClock(timedelta(minutes=40)))
        behind = RedisClock(client, host_clock=HostClock(timedelta(minutes=-20)))
        for clock in (ahead, behind):
            await clock.measure()
        truth = await redis_now(client)
        for clock in (ahead, behind):
            assert abs(clock() - truth) < timedelta(seconds=1)
    finally:
        await client.aclose()


async def test_the_offset_is_measured_again_in_the_background_once_it_is_old() -> None:
    client = connect(REDIS_URL)
    try:
        host = HostClock(timedelta(0))
        clock = RedisClock(client, every=timedelta(seconds=30), host_clock=host)
        clock()  # the first read, before any measurement: the host's time, and a measurement starts
        for _ in range(100):
            if clock._measured_at is not None:
                break
            await asyncio.sleep(0.01)
        host.skew = timedelta(hours=3)  # the host's clock jumps
        assert abs(clock() - datetime.now(UTC) - timedelta(hours=3)) < timedelta(seconds=1)  # not yet measured again
        host.skew = timedelta(hours=3, seconds=31)  # ... and time passes: the next read measures again
        clock()
        for _ in range(100):
            if abs(clock() - await redis_now(client)) < timedelta(seconds=1):
                break
            await asyncio.sleep(0.01)
        assert abs(clock() - await redis_now(client)) < timedelta(seconds=1)
    finally:
        await client.aclose()


MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "minimal.toml"


async def test_a_bot_on_redis_dates_what_it_signs_by_redis(tmp_path: Path) -> None:
    (path := tmp_path / "kerberos-bot.toml").write_text(MINIMAL.read_text(encoding="utf-8"))
    config = load_bot_config(path)
    components = build_components(config, redis_url=REDIS_URL, store_prefix="kbot-test-clock")
    try:
        assert isinstance(components.clock, RedisClock)
    finally:
        await components.aclose()
    assert build_components(config).clock is utc_now  # without Redis: the host's
