"""One scheduler across replicas, on the real Redis: two workers with their own connections and a
controlled clock; exactly one files each scheduled request, and when the leader dies (stops renewing)
the other takes over within the lease and files nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from bot.adapters.redis.client import connect
from bot.adapters.redis.lifecycle import RedisLeadership, RedisSchedulerMemory
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ActionPolicy, ChangeRequest
from bot.domain.diagnosis import RotationPolicy
from bot.services.changes import SCHEDULER, ChangeService
from bot.services.lifecycle import Digest, DomainSchedule, LifecycleService, WatchReport
from bot.services.status import StatusService
from bot.workers.scheduler import LifecycleScheduler
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state
from tests.support.redis_keys import REDIS_URL
from tests.unit.test_lifecycle import Clock

LEASE = timedelta(milliseconds=600)


class Filed:
    def __init__(self) -> None:
        self.by: list[tuple[str, str]] = []  # (worker, request id)


class Notices:
    def __init__(self, filed: Filed, worker: str) -> None:
        self._filed, self._worker = filed, worker

    async def filed(self, request: ChangeRequest) -> None:
        self._filed.by.append((self._worker, request.id))

    async def watched(self, report: WatchReport) -> None:
        pass

    async def digest(self, digest: Digest) -> None:
        pass


@pytest.fixture
async def clients() -> AsyncIterator[list[Redis]]:
    opened: list[Redis] = []
    yield opened
    for client in opened:
        await client.aclose()


def replica(name: str, prefix: str, clock: Clock, filed: Filed, clients: list[Redis]) -> LifecycleScheduler:
    """One bot replica's scheduler: its own Redis connection, the shared directory (the same DCs)."""
    client = connect(REDIS_URL)
    clients.append(client)
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=200)))
    }
    module = FakeKerberosModule.in_step(directories)
    policy = ActionPolicy(2, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"}))
    changes = ChangeService(
        store=RedisApprovalStore(client, prefix),
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0CAROL"})}),
        policies={a: policy for a in Action},
        rotation=RotationPolicy(),
        clock=clock,
    )
    lifecycle = LifecycleService(
        changes=changes,
        status=StatusService(directories, module, FakeEntra(), clock=clock),
        memory=RedisSchedulerMemory(client, prefix),
        schedules=[DomainSchedule("contoso.test", "C0PLATFORM", timedelta(days=180))],
        clock=clock,
    )
    return LifecycleScheduler(
        lifecycle, RedisLeadership(client, prefix), Notices(filed, name), name, clock=clock, lease=LEASE,
        tick=timedelta(0),
    )  # fmt: skip


async def test_exactly_one_replica_files_and_the_other_takes_over_when_it_dies(
    prefix: str, clients: list[Redis]
) -> None:
    clock, filed = Clock(), Filed()
    one, two = replica("w1", prefix, clock, filed, clients), replica("w2", prefix, clock, filed, clients)
    leads = await asyncio.gather(one.run_once(), two.run_once())
    assert sorted(leads) == [False, True]
    leader, follower = (one, two) if leads[0] else (two, one)
    for _ in range(3):  # the leader renews; the follower never leads meanwhile
        assert await leader.run_once() and not await follower.run_once()
    assert len(filed.by) == 1 and filed.by[0][0] == leader.name
    # the leader dies: it stops renewing. The follower leads once Redis has let the lease lapse
    for _ in range(100):
        if await follower.run_once():
            break
        await asyncio.sleep(0.05)  # polling the lead: Redis signals nothing when a key expires
    assert follower.leading
    assert len(filed.by) == 1  # the request is open: the new leader does not file it again
    assert not await leader.run_once()
    clock.now += timedelta(days=1)
    assert await follower.run_once() and len(filed.by) == 1  # still open a day later: still once
    requests = await RedisApprovalStore(clients[0], prefix).for_domain("contoso.test")
    assert [r.requester for r in requests] == [SCHEDULER]  # one request, filed by the bot
