"""The key's lifecycle on a schedule, on fakes with a controlled clock: rotations filed at the cadence
(and never executed without approvals), the second rotation of a double rotation after 24 hours, the
watch's findings reported once each, and one scheduler across replicas."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.approvals import Action, ActionPolicy, ChangeRequest, RequestState
from bot.domain.diagnosis import RotationPolicy
from bot.services.changes import SCHEDULER, ChangeService
from bot.services.lifecycle import Digest, DomainSchedule, LifecycleService, WatchReport
from bot.services.status import StatusService
from bot.workers.scheduler import LifecycleScheduler
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import (
    NOW,
    FakeDirectory,
    FakeEntra,
    FakeGroups,
    FakeKerberosModule,
    FakeLeadership,
    FakeSchedulerMemory,
    on_prem_state,
)

ADMINS = "S0ADMINS"
CHANNEL = "C0PLATFORM"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    lifecycle: LifecycleService
    changes: ChangeService
    store: FakeApprovalStore
    module: FakeKerberosModule
    memory: FakeSchedulerMemory
    clock: Clock


async def _origin(channel: str) -> str:
    return f"T0STANDIN/A0KERBOT/{channel}"


def world(key_age: timedelta = timedelta(days=100), *, twice: bool = False, every: int | None = 90) -> World:
    clock = Clock()
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - key_age))}
    module = FakeKerberosModule.in_step(directories)
    store = FakeApprovalStore()
    policy = ActionPolicy(1, timedelta(hours=4), frozenset({"S0PLATFORM"}), frozenset({ADMINS}))
    changes = ChangeService(
        store=store,
        module=module,
        directories=directories,
        groups=FakeGroups({ADMINS: frozenset({"U0BOB", "U0ALICE"}), "S0PLATFORM": frozenset({"U0ALICE"})}),
        policies={action: policy for action in Action},
        rotation=RotationPolicy(),
        clock=clock,
    )
    status = StatusService(directories, module, FakeEntra(), clock=clock)
    memory = FakeSchedulerMemory()
    schedule = DomainSchedule("contoso.test", CHANNEL, timedelta(days=every) if every else None, twice)
    lifecycle = LifecycleService(
        changes=changes, status=status, memory=memory, schedules=[schedule], clock=clock, origin_of=_origin
    )
    return World(lifecycle, changes, store, module, memory, clock)


async def test_a_key_at_its_cadence_gets_one_rotate_request_filed_by_the_bot() -> None:
    w = world(key_age=timedelta(days=100))
    [request] = await w.lifecycle.file_due_rotations()
    assert request.requester == SCHEDULER and request.action == Action.ROTATE
    assert request.channel == CHANNEL and request.origin == f"T0STANDIN/A0KERBOT/{CHANNEL}"
    assert "every 90 days" in request.reason and request.state == RequestState.PENDING
    assert await w.lifecycle.file_due_rotations() == []  # open: not filed again
    assert w.module.set_calls == 0  # nothing runs without its approvals
    assert await w.changes.execute_next("worker") is None


async def test_a_younger_key_or_no_cadence_files_nothing() -> None:
    assert await world(key_age=timedelta(days=40)).lifecycle.file_due_rotations() == []
    assert await world(every=None).lifecycle.file_due_rotations() == []


async def test_a_denied_scheduled_rotation_is_filed_again_a_day_later_not_at_every_tick() -> None:
    w = world()
    [first] = await w.lifecycle.file_due_rotations()
    await w.changes.deny(first.id, "U0BOB", "not this week")
    w.clock.now += timedelta(hours=2)
    assert await w.lifecycle.file_due_rotations() == []
    w.clock.now += timedelta(days=1)
    [again] = await w.lifecycle.file_due_rotations()
    assert again.id != first.id


async def _approved_and_done(w: World, request: ChangeRequest) -> None:
    await w.changes.approve(request.id, "U0BOB")
    execution = await w.changes.execute_next("worker")
    assert execution is not None and execution.succeeded, execution


async def test_a_double_rotation_files_its_second_half_after_the_24_hour_window() -> None:
    w = world(key_age=timedelta(days=40))
    first = await w.changes.request_rotation(
        "contoso.test", requester="U0ALICE", reason="compromise drill", force=False, channel=CHANNEL, twice=True
    )
    assert first.twice and any("Double rotation" in step for step in first.plan)
    await _approved_and_done(w, first)
    done = await w.changes.get(first.id)
    assert done is not None and "files the second rotation" in (done.outcome or "")
    assert await w.lifecycle.file_second_rotations() == []  # the key changed just now: within 24 hours
    w.clock.now = NOW + timedelta(hours=25)
    [second] = await w.lifecycle.file_second_rotations()
    assert second.follows == first.id and second.requester == "U0ALICE"  # so Alice cannot approve it either
    assert second.action == Action.ROTATE and not second.twice and second.channel == CHANNEL
    assert await w.lifecycle.file_second_rotations() == []  # once


async def test_the_watch_reports_a_new_finding_once_and_its_resolution_once() -> None:
    w = world(key_age=timedelta(days=40), every=None)
    assert await w.lifecycle.watch() == []  # healthy: nothing to say
    good = w.module.cloud["contoso.test"]
    w.module.cloud["contoso.test"] = replace(good, key_version=good.key_version + 7)  # AD and Entra out of step
    [report] = await w.lifecycle.watch()
    assert report == WatchReport("contoso.test", CHANNEL, report.finding, resolved=False)
    assert report.finding.code == "key_version_drift"
    assert await w.lifecycle.watch() == []  # still there: said once
    w.module.cloud["contoso.test"] = good
    [resolved] = await w.lifecycle.watch()
    assert resolved.resolved and resolved.finding.code == "key_version_drift"
    assert await w.lifecycle.watch() == []


class Recorder:
    def __init__(self) -> None:
        self.filed: list[str] = []
        self.watched: list[WatchReport] = []
        self.digests: list[Digest] = []


class Notices:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    async def filed(self, request: ChangeRequest) -> None:
        self._recorder.filed.append(request.id)

    async def watched(self, report: WatchReport) -> None:
        self._recorder.watched.append(report)

    async def digest(self, digest: Digest) -> None:
        self._recorder.digests.append(digest)


async def test_two_schedulers_one_leader_and_the_other_takes_over_when_it_dies() -> None:
    w = world()
    lead = FakeLeadership(w.clock)
    recorder = Recorder()
    one, two = (
        LifecycleScheduler(w.lifecycle, lead, Notices(recorder), name, clock=w.clock, lease=timedelta(seconds=15))
        for name in ("w1", "w2")
    )
    assert await one.run_once() and not await two.run_once()
    assert len(recorder.filed) == 1  # exactly one files the scheduled request
    w.clock.now += timedelta(seconds=5)
    assert await one.run_once() and not await two.run_once()  # the leader renews
    # w1 dies (nothing renews its lease); w2 takes over once the lease lapsed, and files nothing twice
    w.clock.now += timedelta(seconds=16)
    assert await two.run_once()
    assert len(recorder.filed) == 1
    assert not await one.run_once()  # back from the dead: the lead is w2's now


async def test_a_digest_per_channel_once_a_period_with_ages_rotations_refusals_and_drift() -> None:
    w = world(key_age=timedelta(days=100))
    week = timedelta(days=7)
    assert await w.lifecycle.digests(week) == []  # the first look starts the period
    [scheduled] = await w.lifecycle.file_due_rotations()
    await w.changes.deny(scheduled.id, "U0BOB", "after the audit")
    good = w.module.cloud["contoso.test"]
    w.module.cloud["contoso.test"] = replace(good, key_version=good.key_version + 1)
    [drift] = await w.lifecycle.watch()
    w.clock.now += timedelta(days=3)
    assert await w.lifecycle.digests(week) == []  # not a week yet
    w.clock.now += timedelta(days=5)
    [digest] = await w.lifecycle.digests(week)
    [line] = digest.domains
    assert digest.channel == CHANNEL and line.domain == "contoso.test"
    assert line.key_age is not None and line.key_age.days == 108 and line.rotate_every == timedelta(days=90)
    assert (line.rotations, line.refused, line.expired) == (0, 1, 0)
    assert line.drift == (drift.finding.summary,)
    assert await w.lifecycle.digests(week) == []  # once a period
