"""One scheduler across replicas, on the real Redis: two workers with their own connections and a
controlled clock; exactly one files each scheduled request, and when the leader dies (stops renewing)
the other takes over within the lease and files nothing twice; the cadence and the change window are
honoured and the approved rotation runs once, at the window's opening."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from bot.adapters.redis.client import connect
from bot.adapters.redis.lifecycle import RedisLeadership, RedisSchedulerMemory
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ActionPolicy, ChangeRequest, RequestState
from bot.domain.integrity import Signer
from bot.domain.windows import ChangeWindows
from bot.services.changes.decisions import Reminder
from bot.services.changes.executor import Deferral, Execution, HandedOver
from bot.services.changes.intake import SCHEDULER
from bot.services.changes.queries import KeyPropagation
from bot.services.lifecycle import Digest, DomainSchedule, LifecycleService, WatchReport
from bot.services.status import StatusService
from bot.workers.changes import ChangeWorker
from bot.workers.scheduler import LifecycleScheduler
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state
from tests.support.redis_keys import REDIS_URL

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
    changes = engine_on_fakes(
        store=RedisApprovalStore(client, prefix),
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0CAROL"})}),
        policies={a: policy for a in Action},
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


class WorkerNotices:
    """What a change worker reports, per worker: what it carried out, what it put back to wait."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.deferred: list[str] = []

    async def carried_out(self, execution: Execution) -> None:
        self.ran.append(execution.request.id)

    async def waiting(self, deferral: Deferral) -> None:
        self.deferred.append(deferral.request.id)

    async def handed_over(self, handed: HandedOver) -> None:
        raise AssertionError("no change here is run by an operator")

    async def expired(self, request: ChangeRequest) -> None:
        pass

    async def reminded(self, reminder: Reminder) -> None:
        pass

    async def flagged(self, request: ChangeRequest) -> None:
        pass

    async def key_progress(self, request: ChangeRequest, key_version: int, step: KeyPropagation) -> None:
        pass

    async def key_followed(self, request: ChangeRequest, key_version: int, result: KeyPropagation) -> None:
        pass


async def test_two_replicas_honour_the_cadence_and_the_change_window_and_run_the_rotation_once(
    prefix: str, clients: list[Redis]
) -> None:
    """Saturday-morning windows; the key reaches its cadence on a Wednesday: the leader files the rotation,
    it is approved at once, and it runs on one replica only, at the window's opening."""
    clock = Clock()  # Wednesday 2026-11-25 12:00 UTC
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=181)))
    }
    module = FakeKerberosModule.in_step(directories, clock)  # the same DCs and tenant behind both replicas
    windows = ChangeWindows.parse([("0 6 * * sat", 4)])
    opens = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    notices = {"w1": WorkerNotices(), "w2": WorkerNotices()}
    schedulers, workers, services = [], [], []
    for name in ("w1", "w2"):
        client = connect(REDIS_URL)
        clients.append(client)
        changes = engine_on_fakes(
            store=RedisApprovalStore(client, prefix, reclaim_after=timedelta(0)),
            module=module,
            directories=directories,
            groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0CAROL"})}),
            policies={a: ActionPolicy(2, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"})) for a in Action},
            clock=clock,
            windows={"contoso.test": windows},
            signer=Signer(b"k" * 32),  # one key across the replicas, as the configuration gives it
        )
        lifecycle = LifecycleService(
            changes=changes,
            status=StatusService(directories, module, FakeEntra(), clock=clock),
            memory=RedisSchedulerMemory(client, prefix),
            schedules=[DomainSchedule("contoso.test", "C0PLATFORM", timedelta(days=180))],
            clock=clock,
        )
        schedulers.append(
            LifecycleScheduler(
                lifecycle,
                RedisLeadership(client, prefix),
                Notices(Filed(), name),
                name,
                clock=clock,
                lease=LEASE,
                tick=timedelta(0),
            )
        )
        workers.append(ChangeWorker(changes, notices[name], name))
        services.append(changes)

    await asyncio.gather(*(s.run_once() for s in schedulers))
    [request] = await services[0].queries.recent_for("contoso.test")
    assert request.requester == SCHEDULER
    assert await asyncio.gather(*(s.run_once() for s in schedulers)) in ([True, False], [False, True])
    assert len(await services[1].queries.recent_for("contoso.test")) == 1  # filed once, by the leader
    await services[0].decisions.approve(request.id, "U0BOB")
    await services[1].decisions.approve(request.id, "U0CAROL")

    await asyncio.gather(*(w.run_once(block_ms=0) for w in workers))
    assert sum(len(n.deferred) for n in notices.values()) == 1 and module.set_calls == 0
    clock.now = opens - timedelta(minutes=1)
    await asyncio.gather(*(w.run_once(block_ms=0) for w in workers))
    assert module.set_calls == 0  # not a minute early, on either replica
    clock.now = opens + timedelta(minutes=1)
    for _ in range(2):
        await asyncio.gather(*(w.run_once(block_ms=0) for w in workers))
    assert sum(len(n.ran) for n in notices.values()) == 1 and module.set_calls == 1
    done = await services[1].queries.get(request.id)
    assert done is not None and done.state == RequestState.SUCCEEDED
