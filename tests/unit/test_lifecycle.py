"""The key's lifecycle on a schedule, on fakes with a controlled clock: rotations filed at the cadence
(and never executed without approvals), the second rotation of a double rotation after 24 hours, the
watch's findings reported once each, and one scheduler across replicas."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.approvals import Action, ActionPolicy, ChangeRequest, RequestState, Verdict
from bot.domain.errors import UsageError
from bot.domain.history import Event, HistoryEntry
from bot.domain.operators import Effect, Handover
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.errors import NotAllowed
from bot.services.changes.executor import Execution
from bot.services.changes.intake import SCHEDULER
from bot.services.lifecycle import Digest, DomainSchedule, LifecycleService, WatchReport
from bot.services.status import StatusService
from bot.workers.scheduler import LifecycleScheduler
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import (
    NOW,
    FakeDirectory,
    FakeEntra,
    FakeFreezes,
    FakeGroups,
    FakeKerberosModule,
    FakeLeadership,
    FakeSchedulerMemory,
    on_prem_state,
)

ADMINS = "S0ADMINS"
CHANNEL = "C0PLATFORM"


@dataclass
class World:
    lifecycle: LifecycleService
    changes: ChangeEngine
    store: FakeApprovalStore
    module: FakeKerberosModule
    memory: FakeSchedulerMemory
    clock: Clock
    groups: FakeGroups


async def _origin(channel: str) -> str:
    return f"T0STANDIN/A0KERBOT/{channel}"


def world(
    key_age: timedelta = timedelta(days=100),
    *,
    twice: bool = False,
    every: int | None = 90,
    second_with_first: bool = False,
    freezes: FakeFreezes | None = None,
) -> World:
    clock = Clock()
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - key_age))}
    module = FakeKerberosModule.in_step(directories, clock)
    store = FakeApprovalStore()
    groups = FakeGroups({ADMINS: frozenset({"U0BOB", "U0ALICE"}), "S0PLATFORM": frozenset({"U0ALICE"})})
    policy = ActionPolicy(
        1, timedelta(hours=4), frozenset({"S0PLATFORM"}), frozenset({ADMINS}), second_with_first=second_with_first
    )
    changes = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=groups,
        policies={action: policy for action in Action},
        clock=clock,
        freezes=freezes,
    )
    status = StatusService(directories, module, FakeEntra(), clock=clock)
    memory = FakeSchedulerMemory()
    schedule = DomainSchedule("contoso.test", CHANNEL, timedelta(days=every) if every else None, twice)
    lifecycle = LifecycleService(
        changes=changes, status=status, memory=memory, schedules=[schedule], clock=clock, origin_of=_origin
    )
    return World(lifecycle, changes, store, module, memory, clock, groups)


async def test_a_key_at_its_cadence_gets_one_rotate_request_filed_by_the_bot() -> None:
    w = world(key_age=timedelta(days=100))
    [request] = await w.lifecycle.file_due_rotations()
    assert request.requester == SCHEDULER and request.action == Action.ROTATE
    assert request.channel == CHANNEL and request.origin == f"T0STANDIN/A0KERBOT/{CHANNEL}"
    assert "every 90 days" in request.reason and request.state == RequestState.PENDING
    assert await w.lifecycle.file_due_rotations() == []  # open: not filed again
    assert w.module.set_calls == 0  # nothing runs without its approvals
    assert await w.changes.executor.execute_next("worker") is None


async def test_a_younger_key_or_no_cadence_files_nothing() -> None:
    assert await world(key_age=timedelta(days=40)).lifecycle.file_due_rotations() == []
    assert await world(every=None).lifecycle.file_due_rotations() == []


async def test_a_denied_scheduled_rotation_is_filed_again_a_day_later_not_at_every_tick() -> None:
    w = world()
    [first] = await w.lifecycle.file_due_rotations()
    await w.changes.decisions.deny(first.id, "U0BOB", "not this week")
    w.clock.now += timedelta(hours=2)
    assert await w.lifecycle.file_due_rotations() == []
    w.clock.now += timedelta(days=1)
    [again] = await w.lifecycle.file_due_rotations()
    assert again.id != first.id


async def _approved_and_done(w: World, request: ChangeRequest, approver: str = "U0BOB") -> None:
    await w.changes.decisions.approve(request.id, approver)
    execution = await w.changes.executor.execute_next("worker")
    assert isinstance(execution, Execution) and execution.succeeded, execution


async def test_a_double_rotation_files_its_second_half_after_the_24_hour_window() -> None:
    w = world(key_age=timedelta(days=40))
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="compromise drill", force=False, channel=CHANNEL, twice=True
    )
    assert first.twice and any("Double rotation" in step for step in first.plan)
    await _approved_and_done(w, first)
    done = await w.changes.queries.get(first.id)
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


async def test_what_the_watch_sees_while_a_change_is_with_an_operator_names_that_request() -> None:
    w = world(key_age=timedelta(days=40), every=None)
    request = await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await w.changes.decisions.approve(request.id, "U0BOB")
    claim = await w.store.claim_next("worker", timedelta(seconds=30), w.clock())
    assert claim is not None
    handover = Handover(
        "U0OLGA",
        "olga@contoso.test",
        w.clock(),
        w.clock() + timedelta(hours=2),
        "Set-AzureADKerberosServer ...",
        Effect(True, None, "new", "same", ("Update kerberos domain",)),
    )
    entry = HistoryEntry(Event.HANDED_OVER, "U0OLGA", handover.at, handover.encoded())
    await w.store.finish(claim, RequestState.WITH_OPERATOR, "", w.clock(), entry=entry)
    good = w.module.cloud["contoso.test"]
    w.module.cloud["contoso.test"] = replace(good, key_version=good.key_version + 7)  # a half-done change
    [report] = await w.lifecycle.watch()
    assert report.finding.code == "key_version_drift" and report.operator_request == request.id


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
    await w.changes.decisions.deny(scheduled.id, "U0BOB", "after the audit")
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


def breakglass_world(freezes: FakeFreezes | None = None) -> World:
    """The same world, with [approvals.emergency_rotate] given its own group (Dave) and reviews by two."""
    w = world(key_age=timedelta(days=40), every=None)
    policies = {a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action}
    # verified approvals have their own tests (test_verified_approvals.py): here the break-glass group's click counts
    policies[Action.EMERGENCY_ROTATE] = ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({"S0BREAKGLASS"}))
    policies[Action.EMERGENCY_REVIEW] = ActionPolicy(2, timedelta(days=7), frozenset(), frozenset({ADMINS}))
    changes = engine_on_fakes(
        store=w.store,
        module=w.module,
        directories=w.module.directories,
        groups=(groups := FakeGroups({ADMINS: frozenset({"U0BOB", "U0CAROL"}), "S0BREAKGLASS": frozenset({"U0DAVE"})})),
        policies=policies,
        clock=w.clock,
        freezes=freezes,
    )
    status = StatusService(w.module.directories, w.module, FakeEntra(), clock=w.clock)
    lifecycle = LifecycleService(
        changes=changes, status=status, memory=w.memory, schedules=[], clock=w.clock, origin_of=_origin
    )
    return World(lifecycle, changes, w.store, w.module, w.memory, w.clock, groups)


async def test_emergency_rotate_without_a_break_glass_group_is_refused_with_what_to_configure() -> None:
    from bot.bootstrap.policy import action_policies
    from bot.config import load_bot_config

    example = action_policies(load_bot_config(Path(__file__).parents[2] / "examples" / "kerberos-bot.toml"))
    assert not example[Action.EMERGENCY_ROTATE].approver_groups  # the everyday approvers never apply to it
    w = world(every=None)
    changes = engine_on_fakes(
        store=w.store,
        module=w.module,
        directories=w.module.directories,
        groups=FakeGroups({ADMINS: frozenset({"U0BOB"})}),
        policies=example,
        clock=w.clock,
    )
    with pytest.raises(NotAllowed, match=r"approvals.emergency_rotate\] approver_groups"):
        await changes.intake.request_emergency_rotation("contoso.test", requester="U0ALICE", reason="token leaked")


async def test_break_glass_rotates_now_again_once_replicated_and_then_two_people_review_it() -> None:
    w = breakglass_world()
    first = await w.changes.intake.request_emergency_rotation(
        "contoso.test", requester="U0ALICE", reason="token leaked"
    )
    assert first.twice and any("-Force" in step for step in first.plan) and any("review" in s for s in first.plan)
    assert (await w.changes.decisions.approve(first.id, "U0BOB")).verdict == Verdict.NOT_ALLOWED  # not break-glass
    await _approved_and_done(w, first, "U0DAVE")
    [second] = await w.lifecycle.file_second_rotations()  # the new key is on every DC: at once, forced
    assert second.action == Action.EMERGENCY_ROTATE and second.follows == first.id and not second.twice
    assert second.requester == "U0ALICE" and "-Force" in second.plan[0]
    assert "-Force" not in first.plan[0] and not w.module.calls[0].force  # a 40-day-old key: no -Force needed
    await _approved_and_done(w, second, "U0DAVE")
    assert w.module.calls[1].force  # the first's key is minutes old: forced
    [review] = await w.lifecycle.file_second_rotations()
    assert review.action == Action.EMERGENCY_REVIEW and review.requester == SCHEDULER and review.follows == first.id
    assert review.approvals_required == 2
    await w.changes.decisions.approve(review.id, "U0BOB")
    await _approved_and_done(w, review, "U0CAROL")
    reviewed = await w.changes.queries.get(review.id)
    assert reviewed is not None and "acknowledged by 2 people" in (reviewed.outcome or "")
    assert w.module.set_calls == 2  # two rotations; the review changes nothing
    assert await w.lifecycle.file_second_rotations() == []


async def test_whoever_took_part_in_the_emergency_may_not_acknowledge_its_review() -> None:
    w = breakglass_world()
    w.groups.groups[ADMINS] = frozenset({"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"})  # all of them reviewers
    first = await w.changes.intake.request_emergency_rotation("contoso.test", requester="U0ALICE", reason="leak")
    await _approved_and_done(w, first, "U0DAVE")
    [second] = await w.lifecycle.file_second_rotations()
    await _approved_and_done(w, second, "U0DAVE")
    [review] = await w.lifecycle.file_second_rotations()
    for involved in ("U0ALICE", "U0DAVE"):  # its requester, its approver
        assert (await w.changes.decisions.approve(review.id, involved)).verdict == Verdict.NOT_ALLOWED
    refused = [e for e in await w.store.audit(review.id) if e.event == "refused"]
    assert {e.actor for e in refused} == {"U0ALICE", "U0DAVE"} and "took part" in refused[0].detail
    await w.changes.decisions.approve(review.id, "U0BOB")
    await _approved_and_done(w, review, "U0CAROL")  # two who did not: acknowledged
    assert (await w.changes.queries.get(review.id)).state == RequestState.SUCCEEDED  # type: ignore[union-attr]


async def test_a_frozen_domain_takes_no_request_and_runs_no_approved_change_but_break_glass() -> None:
    w = breakglass_world(FakeFreezes())
    approved = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    await w.changes.decisions.approve(approved.id, "U0BOB")
    with pytest.raises(NotAllowed, match="approver group"):  # a requester who cannot approve cannot freeze
        await w.changes.holds.freeze("contoso.test", by="U0ALICE", until=NOW + timedelta(days=2), reason="year end")
    freeze = await w.changes.holds.freeze("contoso.test", by="U0BOB", until=NOW + timedelta(days=2), reason="year end")
    assert freeze.until == NOW + timedelta(days=2) and await w.changes.holds.freeze_of("contoso.test") == freeze
    with pytest.raises(UsageError, match="frozen until"):
        await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="again", force=False)
    execution = await w.changes.executor.execute_next("worker")  # approved before the freeze: refused when it would run
    assert isinstance(execution, Execution) and not execution.succeeded and "frozen until" in execution.outcome
    assert w.module.set_calls == 0
    emergency = await w.changes.intake.request_emergency_rotation("contoso.test", requester="U0ALICE", reason="leak")
    await _approved_and_done(w, emergency, "U0DAVE")  # break-glass overrides the freeze
    assert await w.changes.holds.thaw("contoso.test", by="U0CAROL")
    assert await w.changes.holds.freeze_of("contoso.test") is None
    w.clock.now += timedelta(days=1)  # past the 24-hour window of the emergency's key
    await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="after the freeze", force=False)


async def test_a_freeze_ends_by_itself() -> None:
    w = breakglass_world(FakeFreezes())
    await w.changes.holds.freeze("contoso.test", by="U0BOB", until=NOW + timedelta(hours=1), reason="maintenance")
    w.clock.now += timedelta(hours=2)
    assert await w.changes.holds.freeze_of("contoso.test") is None


async def test_a_double_rotation_whose_policy_says_so_approves_its_second_rotation_together() -> None:
    w = world(key_age=timedelta(days=40), second_with_first=True)
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="retire the old key", force=False, channel=CHANNEL, twice=True
    )
    assert first.second_with_first and any("approving this approves both" in step for step in first.plan)
    await _approved_and_done(w, first)
    w.clock.now = NOW + timedelta(hours=25)
    [second] = await w.lifecycle.file_second_rotations()
    assert second.approved_with == first.id and second.state == RequestState.APPROVED and not second.approvals
    assert any(f"Approved together with {first.id}" in step for step in second.plan)
    done = await w.changes.executor.execute_next("worker")  # no click: the first's approvals hold for it
    assert isinstance(done, Execution) and done.succeeded, done
    assert [c.force for c in w.module.calls] == [False, False]
    assert "together with" in next(e.detail for e in await w.store.audit(second.id) if e.event == "approved")


async def test_a_deleted_pairing_files_no_second_rotation_that_runs_the_first_approvals_cover_one() -> None:
    w = world(key_age=timedelta(days=40), second_with_first=True)
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="retire the old key", force=False, channel=CHANNEL, twice=True
    )
    await _approved_and_done(w, first)
    w.clock.now = NOW + timedelta(hours=25)
    [second] = await w.lifecycle.file_second_rotations()
    assert isinstance(done := await w.changes.executor.execute_next("worker"), Execution) and done.succeeded
    assert done.request.id == second.id
    for _ in range(4):  # a Redis writer deletes the pairing from the scheduler's memory, again and again
        w.memory.values.pop(f"second:{first.id}", None)
        w.clock.now += timedelta(hours=25)
        assert await w.lifecycle.file_second_rotations() == []  # the requests themselves say it was filed
        # and one filed all the same (its sibling out of sight) does not run on the first's approvals
        again = await w.changes.intake.request_second_rotation(first)
        replayed = await w.changes.executor.execute_next("worker")
        assert isinstance(replayed, Execution) and replayed.request.id == again.id and not replayed.succeeded
        assert "approvals cover one second rotation only" in replayed.outcome
    assert w.module.set_calls == 2  # the first and its one second rotation: nothing more


async def test_without_that_policy_the_second_rotation_waits_for_its_own_approvals() -> None:
    w = world(key_age=timedelta(days=40))
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="drill", force=False, channel=CHANNEL, twice=True
    )
    assert any("with its own approvals" in step for step in first.plan)
    await _approved_and_done(w, first)
    w.clock.now = NOW + timedelta(hours=25)
    [second] = await w.lifecycle.file_second_rotations()
    assert second.approved_with is None and second.state == RequestState.PENDING
    assert await w.changes.executor.execute_next("worker") is None


async def test_a_second_rotation_approved_with_its_first_is_re_judged_by_the_first_approvals_now() -> None:
    w = world(key_age=timedelta(days=40), second_with_first=True)
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="drill", force=False, channel=CHANNEL, twice=True
    )
    await _approved_and_done(w, first)
    w.clock.now = NOW + timedelta(hours=25)
    [second] = await w.lifecycle.file_second_rotations()
    assert second.approved_with == first.id
    # meanwhile Bob, who approved the first, left the approver group: the second does not run on his approval
    w.groups.groups[ADMINS] = frozenset({"U0ALICE"})
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and not done.succeeded and "no longer in an approver group" in done.outcome
    assert w.module.set_calls == 1


async def test_a_pending_request_made_approved_with_a_first_in_the_store_is_refused_as_forged() -> None:
    w = world(key_age=timedelta(days=40), second_with_first=True)
    first = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="drill", force=False, channel=CHANNEL, twice=True
    )
    await _approved_and_done(w, first)
    other = await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=True)
    # someone with write access to the store turns another request into "approved with the first"
    w.store.requests[other.id] = replace(
        w.store.requests[other.id], approved_with=first.id, follows=first.id, state=RequestState.APPROVED
    )
    w.store.work.append(other.id)
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.request.state == RequestState.ATTENTION
    assert "signature" in done.outcome and w.module.set_calls == 1


async def test_a_frozen_domain_gets_its_scheduled_rotation_once_the_freeze_is_over_without_a_warning_per_tick(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world(freezes=FakeFreezes())
    await w.changes.holds.freeze("contoso.test", by="U0BOB", until=NOW + timedelta(hours=6), reason="year end")
    for _ in range(3):
        assert await w.lifecycle.file_due_rotations() == []
        w.clock.now += timedelta(hours=1)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    w.clock.now = NOW + timedelta(hours=7)
    [request] = await w.lifecycle.file_due_rotations()
    assert request.requester == SCHEDULER


async def test_a_domain_with_an_approvals_channel_gets_its_scheduled_rotation_carded_there() -> None:
    w = world()
    schedule = DomainSchedule("contoso.test", CHANNEL, timedelta(days=90), approvals_channel="C0APPROVALS")
    lifecycle = LifecycleService(
        changes=w.changes,
        status=StatusService(w.module.directories, w.module, FakeEntra(), clock=w.clock),
        memory=w.memory,
        schedules=[schedule],
        clock=w.clock,
        origin_of=_origin,
    )
    [request] = await lifecycle.file_due_rotations()
    assert request.channel == "C0APPROVALS" and request.origin == "T0STANDIN/A0KERBOT/C0APPROVALS"


async def test_a_scheduler_memory_written_by_anything_else_neither_silences_nor_stops_the_scheduler() -> None:
    from bot.domain.integrity import Signer
    from bot.services.scheduler_memory import SignedMemory

    raw = FakeSchedulerMemory()
    memory = SignedMemory(raw, Signer(b"m" * 32))
    await memory.remember("watch:contoso.test", '{"a": 1}')
    assert await memory.recall("watch:contoso.test") == '{"a": 1}'  # the bot's own comes back
    raw.values["cadence:contoso.test"] = "not json at all"  # would have stopped every tick
    assert await memory.recall("cadence:contoso.test") is None
    # a writer "remembers" the cadence filed for the current key, to silence it: taken as nothing
    raw.values["cadence:contoso.test"] = json.dumps({"value": json.dumps({"key_version": 53325}), "mac": "v2:00"})
    assert await memory.recall("cadence:contoso.test") is None
    assert await memory.recall("never:written") is None
