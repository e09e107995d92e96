"""The audit trail read in order and by time, and its readers' cursors: the Redis adapter (real Redis, a
prefix of its own) and the in-memory fake honour the same contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.redis.audit import RedisAuditTrail
from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.ports import ApprovalStore, AuditTrail
from tests.support.fake_approvals import FakeApprovalStore, FakeAuditTrail
from tests.support.redis_keys import REDIS_URL


@dataclass
class Trail:
    store: ApprovalStore
    trail: AuditTrail


@pytest.fixture(params=["fake", "redis"])
async def trail(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Trail]:
    if request.param == "fake":
        store = FakeApprovalStore()
        yield Trail(store, FakeAuditTrail(store))
        return
    client = connect(REDIS_URL)
    yield Trail(RedisApprovalStore(client, prefix), RedisAuditTrail(client, prefix))
    await client.aclose()


async def test_entries_come_in_order_after_a_cursor_in_pages(trail: Trail) -> None:
    now = datetime.now(UTC)
    for i in range(5):
        await trail.store.note(f"r{i}", "reminded", None, f"reminder {i}", now + timedelta(seconds=i))
    first = await trail.trail.after(None, 3)
    assert [e.request_id for e in first] == ["r0", "r1", "r2"]
    rest = await trail.trail.after(first[-1].id, 10)
    assert [e.request_id for e in rest] == ["r3", "r4"] and await trail.trail.after(rest[-1].id, 10) == []


async def test_a_time_range_holds_the_entries_whose_time_is_in_it(trail: Trail) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes in (0, 10, 20):
        await trail.store.note(f"r{minutes}", "nudged", "U0ALICE", "x", now + timedelta(minutes=minutes))
    found = await trail.trail.between(now + timedelta(minutes=5), now + timedelta(minutes=20))
    assert [e.request_id for e in found] == ["r10"] and found[0].actor == "U0ALICE"


async def test_each_reader_keeps_its_own_cursor(trail: Trail) -> None:
    assert await trail.trail.cursor("syslog") is None
    await trail.trail.save_cursor("syslog", "12-0")
    await trail.trail.save_cursor("hec", "7-0")
    assert await trail.trail.cursor("syslog") == "12-0" and await trail.trail.cursor("hec") == "7-0"
