"""The command queue, the sign-in tickets, the rate limiter and the notice preferences: the in-memory fakes and
the Redis adapters (real Redis, a prefix of their own) honour the same contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.adapters.redis.client import connect
from bot.adapters.redis.commands import RedisCommandQueue
from bot.adapters.redis.preferences import RedisNoticePreferences
from bot.adapters.redis.rate import RedisRateLimiter
from bot.adapters.redis.replay import RedisReplayGuard
from bot.adapters.redis.sign_in_tickets import RedisSignInTickets
from bot.domain.ports import CommandQueue, DeferredCommand, NoticePreferences, RateLimiter, ReplayGuard
from bot.domain.verification import SignInTickets
from tests.support.fake_approvals import FakeSignInTickets
from tests.support.fakes import FakeCommandQueue, FakeNoticePreferences, FakeRateLimiter
from tests.support.redis_keys import REDIS_URL, cluster_prefix


def redis_of(request: pytest.FixtureRequest, prefix: str) -> tuple[aioredis.Redis, str]:
    """The Redis of the case's parameter: the shared server with the test's prefix, or the cluster with a
    keyspace of the test's own (one hash tag)."""
    if request.param == "cluster":
        return connect(request.getfixturevalue("redis_cluster").url), cluster_prefix()
    return connect(REDIS_URL), prefix


@pytest.fixture(params=["fake", "redis", "cluster"])
async def queue(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[CommandQueue]:
    if request.param == "fake":
        yield FakeCommandQueue()
        return
    client, keyspace = redis_of(request, prefix)
    yield RedisCommandQueue(client, keyspace)
    await client.aclose()


def command(text: str) -> DeferredCommand:
    return DeferredCommand(text, "U0ALICE", "C0PLATFORM", "http://127.0.0.1:9/r", "req-1", datetime.now(UTC))


async def test_commands_come_out_in_order_each_to_one_consumer(queue: CommandQueue) -> None:
    for text in ("status", "gpo", "requests"):
        await queue.put(command(text))
    first = await queue.take("w1", count=2, block_ms=10)
    second = await queue.take("w2", count=5, block_ms=10)
    assert [c.text for c in first] == ["status", "gpo"] and [c.text for c in second] == ["requests"]
    assert first[0].user_id == "U0ALICE" and first[0].reply_to == "http://127.0.0.1:9/r"
    assert await queue.take("w1", count=5, block_ms=10) == []  # at most once: nothing comes back


async def test_a_burst_put_at_once_is_taken_whole(queue: CommandQueue) -> None:
    await asyncio.gather(*(queue.put(command(f"status {i}")) for i in range(50)))
    taken: list[DeferredCommand] = []
    while batch := await queue.take("w", count=20, block_ms=10):
        taken += batch
    assert sorted(c.text for c in taken) == sorted(f"status {i}" for i in range(50))


async def test_a_command_written_twice_is_taken_once(queue: CommandQueue) -> None:
    # a write retried after its reply was lost (a timeout, a failover) leaves the same entry twice in the stream
    once = command("rotate contoso.test --force")
    other = replace(once, request_id="req-2")  # the same words typed again: another request
    for entry in (once, once, other):
        await queue.put(entry)
    taken = await queue.take("w1", count=2, block_ms=10) + await queue.take("w2", count=5, block_ms=10)
    assert taken == [once, other]  # the same words typed twice are two commands; one written twice is one


@dataclass
class Tickets:
    store: SignInTickets
    wait: Callable[[timedelta], Awaitable[None]]  # let time pass, the store's way


@pytest.fixture(params=["fake", "redis", "cluster"])
async def tickets(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Tickets]:
    if request.param == "fake":
        now = [datetime.now(UTC)]

        async def move(by: timedelta) -> None:
            now[0] += by

        yield Tickets(FakeSignInTickets(lambda: now[0]), move)
        return
    client, keyspace = redis_of(request, prefix)

    async def sleep(by: timedelta) -> None:
        await asyncio.sleep(by.total_seconds())

    yield Tickets(RedisSignInTickets(client, keyspace), sleep)
    await client.aclose()


async def test_a_ticket_is_taken_once_and_its_use_remembered(tickets: Tickets) -> None:
    await tickets.store.put("state-1", "ticket one", timedelta(seconds=30))
    assert await tickets.store.taken("state-1") is None
    assert await tickets.store.take("state-1", timedelta(seconds=30)) == "ticket one"
    assert await tickets.store.take("state-1", timedelta(seconds=30)) is None  # a replayed link finds nothing
    assert await tickets.store.taken("state-1") == "ticket one"  # but can be traced to its request
    assert await tickets.store.take("state-2", timedelta(seconds=30)) is None  # nor does a foreign one
    assert await tickets.store.taken("state-2") is None


async def test_a_state_keeps_its_first_ticket(tickets: Tickets) -> None:
    await tickets.store.put("state-1", "first", timedelta(seconds=30))
    await tickets.store.put("state-1", "second", timedelta(seconds=30))
    assert await tickets.store.take("state-1", timedelta(seconds=30)) == "first"


async def test_tickets_and_their_use_marks_lapse(tickets: Tickets) -> None:
    await tickets.store.put("waits", "w", timedelta(milliseconds=300))
    await tickets.store.put("used", "u", timedelta(seconds=30))
    assert await tickets.store.take("used", timedelta(milliseconds=300)) == "u"
    await tickets.wait(timedelta(milliseconds=400))
    assert await tickets.store.take("waits", timedelta(seconds=30)) is None
    assert await tickets.store.taken("used") is None


@pytest.fixture(params=["fake", "redis", "cluster"])
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimiter]:
    if request.param == "fake":
        yield FakeRateLimiter()
        return
    client, keyspace = redis_of(request, prefix)
    yield RedisRateLimiter(client, keyspace)
    await client.aclose()


async def test_a_bucket_gives_its_capacity_then_says_how_long_to_wait_and_refills(limiter: RateLimiter) -> None:
    taken = [await limiter.take("click:U0BOB", capacity=3, per_second=0.5) for _ in range(4)]
    assert taken[:3] == [0.0, 0.0, 0.0] and 1.8 <= taken[3] <= 2.0
    assert await limiter.take("click:U0CAROL", capacity=3, per_second=0.5) == 0.0  # buckets are per key


async def test_a_bucket_refills_by_the_stores_own_clock(limiter: RateLimiter) -> None:
    # the callers name no time: every replica's take is measured by the same clock, whatever theirs say
    taken = [await limiter.take("post:C0PLATFORM", capacity=2, per_second=20) for _ in range(3)]
    assert taken[:2] == [0.0, 0.0] and 0.0 < taken[2] <= 0.05
    await asyncio.sleep(taken[2] + 0.02)
    assert await limiter.take("post:C0PLATFORM", capacity=2, per_second=20) == 0.0


@pytest.fixture(params=["redis", "cluster"])
async def replay_guard(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[ReplayGuard]:
    client, keyspace = redis_of(request, prefix)
    yield RedisReplayGuard(client, keyspace)
    await client.aclose()


async def test_a_burst_of_replays_lets_exactly_one_through(replay_guard: ReplayGuard) -> None:
    answers = await asyncio.gather(*(replay_guard.first_time("1700000000", "v0=abc") for _ in range(20)))
    others = await asyncio.gather(*(replay_guard.first_time("1700000000", f"v0={i}") for i in range(5)))
    assert answers.count(True) == 1 and all(others)
    assert not await replay_guard.first_time("1700000000", "v0=3")  # remembered after its burst, too


@pytest.fixture(params=["fake", "redis", "cluster"])
async def preferences(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[NoticePreferences]:
    if request.param == "fake":
        yield FakeNoticePreferences()
        return
    client, keyspace = redis_of(request, prefix)
    yield RedisNoticePreferences(client, keyspace)
    await client.aclose()


async def test_a_user_mutes_and_unmutes_their_direct_messages(preferences: NoticePreferences) -> None:
    assert not await preferences.muted("U0ALICE")  # on by default
    await preferences.set_muted("U0ALICE", True)
    await preferences.set_muted("U0ALICE", True)  # twice: the same
    assert await preferences.muted("U0ALICE") and not await preferences.muted("U0BOB")
    await preferences.set_muted("U0ALICE", False)
    assert not await preferences.muted("U0ALICE")


async def test_who_opened_the_home_page_is_remembered(preferences: NoticePreferences) -> None:
    assert await preferences.home_users() == frozenset()
    await preferences.remember_home("U0ALICE")
    await preferences.remember_home("U0ALICE")
    await preferences.remember_home("U0BOB")
    assert await preferences.home_users() == {"U0ALICE", "U0BOB"}
