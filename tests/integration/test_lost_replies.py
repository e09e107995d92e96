"""A click whose reply from Redis is lost is answered as what it did: redis-py sends a command again when its
connection breaks before the reply, and the second run of an approval that approved said "already decided"
(and audited a refusal). Through a relay in front of the real Redis that drops the first script's reply."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.adapters.redis.store_base import CLAIM
from bot.domain.approvals import RequestState, Verdict
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


@pytest.fixture
async def store(cutter: ReplyCutter) -> AsyncIterator[RedisApprovalStore]:
    """The approval store on the real Redis, through the relay, with a prefix of its own (removed after)."""
    db = REDIS_URL.rsplit("/", 1)[1]
    prefix = f"kbot-lost-{uuid.uuid4().hex[:8]}"
    through = RedisApprovalStore(connect(f"redis://127.0.0.1:{cutter.port}/{db}"), prefix)
    try:
        yield through
    finally:
        client = connect(REDIS_URL)
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await through.close()


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
