"""A click whose reply from Redis is lost is answered as what it did: redis-py sends a command again when its
connection breaks before the reply, and the second run of an approval that approved said "already decided"
(and audited a refusal). Through a relay in front of the real Redis that drops the first script's reply."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.adapters.redis.client import connect
from bot.adapters.redis.commands import RedisCommandQueue
from bot.adapters.redis.rate import RedisRateLimiter
from bot.adapters.redis.replay import RedisReplayGuard
from bot.adapters.redis.scripts import lua_script
from bot.adapters.redis.sign_in_tickets import RedisSignInTickets
from bot.adapters.redis.store import RedisApprovalStore
from bot.adapters.redis.store_base import (
    ATTENTION,
    CLAIM,
    CONCLUDE,
    DEFER,
    EXPIRE,
    FINISH,
    NOTE,
    REMIND,
    STEP,
    TAKE_OVER,
    WITHDRAW,
)
from bot.domain.approvals import Claim, FinishResult, RequestState, Verdict
from bot.domain.history import Event, HistoryEntry
from bot.domain.ports import DeferredCommand
from tests.contracts.test_approval_store import new_request
from tests.support.redis_keys import REDIS_URL


class ReplyCutter:
    """A relay to Redis that, once armed, closes the client's connection instead of passing on the reply to the
    next script (EVALSHA) it carries, or the next that names ``only`` (a script's SHA): the script has run, its
    caller never hears of it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379) -> None:
        self._to = (host, port)
        self.armed = False
        self.only = b""
        self.cut = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> ReplyCutter:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for relay in self._relays:  # every connection closed with the relay, none left for the collector
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        server_in, server_out = await asyncio.open_connection(*self._to)
        script_sent = asyncio.Event()

        async def upstream() -> None:
            while chunk := await client_in.read(65536):
                if self.armed and b"EVALSHA" in chunk.upper() and self.only in chunk:
                    script_sent.set()
                server_out.write(chunk)
                await server_out.drain()

        async def downstream() -> None:
            while chunk := await server_in.read(65536):
                if script_sent.is_set() and self.armed:
                    self.armed = False
                    self.cut += 1
                    client_out.close()  # the reply never reaches the client
                    return
                client_out.write(chunk)
                await client_out.drain()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


@pytest.fixture
async def cutter() -> AsyncIterator[ReplyCutter]:
    async with ReplyCutter() as relay:
        yield relay


@dataclass(frozen=True)
class Through:
    """A Redis client through the relay, and a prefix of its own (its keys removed after the test)."""

    client: aioredis.Redis
    prefix: str


@pytest.fixture
async def through(cutter: ReplyCutter) -> AsyncIterator[Through]:
    db = REDIS_URL.rsplit("/", 1)[1]
    relayed = Through(connect(f"redis://127.0.0.1:{cutter.port}/{db}"), f"kbot-lost-{uuid.uuid4().hex[:8]}")
    try:
        yield relayed
    finally:
        client = connect(REDIS_URL)
        keys = [key async for key in client.scan_iter(f"{relayed.prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await relayed.client.aclose()


@pytest.fixture
def store(through: Through) -> RedisApprovalStore:
    """The approval store on the real Redis, through the relay."""
    return RedisApprovalStore(through.client, through.prefix)


async def test_an_approval_whose_reply_was_lost_is_answered_approved_and_counted_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    request = new_request()
    await store.create(request)
    cutter.armed = True
    result = await store.approve(request.id, "U0BOB", request.created_at)
    assert cutter.cut == 1  # the reply was lost, and the client sent the script again
    assert result.verdict == Verdict.APPROVED
    stored = await store.get(request.id)
    assert stored is not None and stored.state == RequestState.APPROVED
    assert [a.approver for a in stored.approvals] == ["U0BOB"]
    events = [e.event for e in await store.audit(request.id)]
    assert events.count("approved") == 1 and "refused" not in events


async def test_a_request_whose_filing_reply_was_lost_is_filed_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    request = new_request()
    cutter.armed = True
    await store.create(request)
    assert cutter.cut == 1
    stored = await store.get(request.id)
    assert stored is not None and stored.state == RequestState.PENDING
    events = [e.event for e in await store.audit(request.id)]
    assert events == ["requested"]  # filed once: one entry in the trail


async def test_a_claim_whose_reply_was_lost_is_the_workers_and_runs_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    request = new_request()
    await store.create(request)
    await store.approve(request.id, "U0BOB", request.created_at)
    cutter.only, cutter.armed = hashlib.sha1(CLAIM.encode()).hexdigest().encode(), True
    claim = await store.claim_next("worker-1", timedelta(seconds=30), datetime.now(UTC))
    assert cutter.cut == 1  # the claim ran, its reply was lost, and the client sent it again
    assert claim is not None and claim.request.id == request.id  # the worker has it: not "gone", left to lapse
    stored = await store.get(request.id)
    assert stored is not None and stored.state == RequestState.EXECUTING
    assert [e.event for e in await store.audit(request.id)].count("claimed") == 1


def arm(cutter: ReplyCutter, script: str) -> None:
    """The next run of ``script`` has its reply lost (the client then sends it again)."""
    cutter.only, cutter.armed = hashlib.sha1(script.encode()).hexdigest().encode(), True


async def claimed(store: RedisApprovalStore, lease: timedelta = timedelta(seconds=30)) -> Claim:
    request = new_request()
    await store.create(request)
    await store.approve(request.id, "U0BOB", request.created_at)
    claim = await store.claim_next("worker-1", lease, datetime.now(UTC))
    assert claim is not None and claim.request.id == request.id
    return claim


async def trail(store: RedisApprovalStore, request_id: str) -> tuple[list[str], int]:
    """The request's audit events, and how long its history is."""
    stored = await store.get(request_id)
    assert stored is not None
    return [e.event for e in await store.audit(request_id)], len(stored.history)


def entry(event: Event, detail: str = "") -> HistoryEntry:
    return HistoryEntry(event, "", datetime.now(UTC), detail)


async def test_a_deferral_whose_reply_was_lost_is_the_workers_and_waits_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    claim = await claimed(store)
    _, history = await trail(store, claim.request.id)
    until = datetime.now(UTC) + timedelta(hours=1)
    arm(cutter, DEFER)
    deferred = await store.defer(
        claim, until, "mac", "waits for its window", datetime.now(UTC), entry=entry(Event.WAITS)
    )
    assert cutter.cut == 1
    assert deferred  # not "someone else's" for a deferral that happened
    events, history_after = await trail(store, claim.request.id)
    assert events.count("waiting") == 1 and history_after == history + 1
    # withdrawn while it waits, the reply lost too: told "cancelled", not "not pending"
    arm(cutter, WITHDRAW)
    result = await store.withdraw(claim.request.id, "U0ALICE", datetime.now(UTC), entry=entry(Event.CANCELLED))
    assert cutter.cut == 2
    assert result.verdict == Verdict.CANCELLED
    events, history_withdrawn = await trail(store, claim.request.id)
    assert events.count("cancelled") == 1 and history_withdrawn == history_after + 1


async def test_a_finish_whose_reply_was_lost_is_finished_once(cutter: ReplyCutter, store: RedisApprovalStore) -> None:
    claim = await claimed(store)
    _, history = await trail(store, claim.request.id)
    arm(cutter, FINISH)
    said = await store.finish(claim, RequestState.SUCCEEDED, "rotated", datetime.now(UTC), entry=entry(Event.SUCCEEDED))
    assert cutter.cut == 1
    assert said == FinishResult.FINISHED  # not "not ours"
    events, history_after = await trail(store, claim.request.id)
    assert events.count("succeeded") == 1 and history_after == history + 1


async def test_an_operators_change_concluded_or_taken_over_with_the_reply_lost_happens_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    claim = await claimed(store)
    await store.finish(claim, RequestState.WITH_OPERATOR, "handed over", datetime.now(UTC))
    _, history = await trail(store, claim.request.id)
    arm(cutter, TAKE_OVER)
    taken = await store.hand_over_again(claim.request.id, history, datetime.now(UTC), entry(Event.HANDED_OVER, "dave"))
    assert cutter.cut == 1
    assert taken  # not "someone took it first"
    events, history_after = await trail(store, claim.request.id)
    assert events.count("taken_over") == 1 and history_after == history + 1
    arm(cutter, CONCLUDE)
    concluded = await store.conclude(
        claim.request.id, RequestState.SUCCEEDED, "verified", datetime.now(UTC), entry=entry(Event.SUCCEEDED)
    )
    assert cutter.cut == 2
    assert concluded
    events, history_concluded = await trail(store, claim.request.id)
    assert events.count("succeeded") == 1 and history_concluded == history_after + 1


async def test_a_lapsed_claim_flagged_with_the_reply_lost_is_flagged_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    claim = await claimed(store, lease=timedelta(milliseconds=200))
    await asyncio.sleep(0.4)  # the lease lapses by Redis's clock
    arm(cutter, ATTENTION)
    flagged = await store.flag_if_abandoned(claim.request.id, "its worker stopped", datetime.now(UTC))
    assert cutter.cut == 1
    assert flagged
    events, _ = await trail(store, claim.request.id)
    assert events.count("attention") == 1


async def test_a_step_whose_reply_was_lost_is_in_the_history_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    claim = await claimed(store)
    _, history = await trail(store, claim.request.id)
    arm(cutter, STEP)
    await store.record_step(claim.request.id, "module called", datetime.now(UTC), entry=entry(Event.STEP, "module"))
    assert cutter.cut == 1
    _, history_after = await trail(store, claim.request.id)
    assert history_after == history + 1


async def test_a_refusal_or_a_note_whose_reply_was_lost_is_audited_once(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    request = new_request()
    await store.create(request)
    arm(cutter, NOTE)
    await store.refuse(request.id, "U0MALLORY", "not an approver", datetime.now(UTC))
    assert cutter.cut == 1
    arm(cutter, NOTE)
    await store.note(request.id, "nudged", "U0ALICE", "the approvers were reminded", datetime.now(UTC))
    assert cutter.cut == 2
    events, _ = await trail(store, request.id)
    assert events.count("refused") == 1 and events.count("nudged") == 1


async def test_a_sign_in_ticket_whose_reply_was_lost_is_the_approvers_not_a_replay(
    cutter: ReplyCutter, through: Through
) -> None:
    tickets = RedisSignInTickets(through.client, through.prefix)
    await tickets.put("state-1", "the approver's ticket", timedelta(minutes=5))
    cutter.armed = True
    assert await tickets.take("state-1", timedelta(minutes=5)) == "the approver's ticket"
    assert cutter.cut == 1  # taken, the reply lost, the take sent again
    assert await tickets.take("state-1", timedelta(minutes=5)) is None  # the link still counts once


async def test_a_replay_check_whose_reply_was_lost_lets_its_requests_through(
    cutter: ReplyCutter, through: Through
) -> None:
    guard = RedisReplayGuard(through.client, through.prefix)
    cutter.armed = True
    firsts = await asyncio.gather(*(guard.first_time("1700000000", f"v0={n:064x}") for n in range(3)))
    assert cutter.cut == 1  # checked, the reply lost, the batch sent again
    assert firsts == [True, True, True]  # not all three refused as replays of themselves
    assert not await guard.first_time("1700000000", f"v0={0:064x}")  # a real replay still is one


async def test_an_expiry_or_a_reminder_whose_reply_was_lost_is_still_announced(
    cutter: ReplyCutter, store: RedisApprovalStore
) -> None:
    reminded = new_request()
    await store.create(reminded)
    arm(cutter, REMIND)
    assert await store.mark_reminded(reminded.id, 1)  # the reminder goes out: not "already sent"
    assert cutter.cut == 1
    assert not await store.mark_reminded(reminded.id, 1)  # and once
    lapsing = new_request(ttl=timedelta(milliseconds=1))
    await store.create(lapsing)
    arm(cutter, EXPIRE)
    expired = await store.expire_due(datetime.now(UTC) + timedelta(seconds=1))
    assert cutter.cut == 2
    assert lapsing.id in expired  # its card is updated: the expiry is not lost with the reply
    events, _ = await trail(store, lapsing.id)
    assert events.count("expired") == 1


async def test_commands_taken_with_the_reply_lost_are_run_not_dropped(cutter: ReplyCutter, through: Through) -> None:
    queue = RedisCommandQueue(through.client, through.prefix)
    for n in range(2):
        await queue.put(DeferredCommand("status", f"U0ALICE{n}", "C0PLATFORM", "https://r", f"r{n}", datetime.now(UTC)))
    arm(cutter, lua_script("settle_commands", "once"))
    taken = await queue.take("worker-1", count=10, block_ms=100)
    assert cutter.cut == 1  # taken, the settle's reply lost, the settle sent again
    assert [c.request_id for c in taken] == ["r0", "r1"]  # answered, not dropped as copies of themselves
    assert await queue.take("worker-1", count=10, block_ms=100) == []  # and taken once


async def test_a_rate_limit_take_whose_reply_was_lost_takes_one_token(cutter: ReplyCutter, through: Through) -> None:
    limiter = RedisRateLimiter(through.client, through.prefix)
    cutter.armed = True
    assert await limiter.take("status:U0ALICE", capacity=2, per_second=0.001) == 0
    assert cutter.cut == 1  # taken, the reply lost, the take sent again
    assert await limiter.take("status:U0ALICE", capacity=2, per_second=0.001) == 0  # the second token still there
    assert await limiter.take("status:U0ALICE", capacity=2, per_second=0.001) > 0  # and then none
