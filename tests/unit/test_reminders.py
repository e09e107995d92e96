"""Reminders, escalation and nudges, on fakes with a controlled clock: each reminder point of a pending
request is given out once; after the last one the fallback group may approve too (from the signed times
alone, and never break-glass); the requester may nudge once an hour; all of it audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.approvals import Action, ActionPolicy, ReminderPolicy, RequestState, Verdict
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.errors import NotAllowed, RateLimited
from bot.services.changes.executor import Execution
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, FakeRateLimiter, on_prem_state

ADMINS, FALLBACK, BREAKGLASS = "S0ADMINS", "S0FALLBACK", "S0BREAKGLASS"


def service(clock: Clock, reminders: ReminderPolicy) -> tuple[ChangeEngine, FakeApprovalStore]:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    store = FakeApprovalStore()
    policies = {a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action}
    policies[Action.EMERGENCY_ROTATE] = ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({BREAKGLASS}))
    changes = engine_on_fakes(
        store=store,
        module=FakeKerberosModule.in_step(directories, clock),
        directories=directories,
        groups=FakeGroups({ADMINS: frozenset({"U0BOB"}), FALLBACK: frozenset({"U0FRANK"}), BREAKGLASS: frozenset()}),
        policies=policies,
        clock=clock,
        limiter=FakeRateLimiter(clock),
        reminders=reminders,
    )
    return changes, store


ESCALATING = ReminderPolicy((0.5, 0.9), fallback_group=FALLBACK, fallback_channel="C0ONCALL")


async def test_each_reminder_point_is_given_out_once_and_the_last_escalates() -> None:
    clock = Clock()
    changes, store = service(clock, ESCALATING)
    request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    clock.now = NOW + timedelta(hours=1)
    assert await changes.decisions.due_reminders() == []
    clock.now = NOW + timedelta(hours=2, minutes=1)  # half of its 4 hours
    [first] = await changes.decisions.due_reminders()
    assert first.number == 1 and not first.escalates
    assert await changes.decisions.due_reminders() == []  # once, whichever worker asks
    clock.now = NOW + timedelta(hours=3, minutes=40)  # past 90 %
    [last] = await changes.decisions.due_reminders()
    assert last.number == 2 and last.escalates and last.request.id == request.id
    assert await changes.decisions.due_reminders() == []
    events = [e.event for e in await store.audit(request.id)]
    assert events.count("reminded") == 1 and events.count("escalated") == 1


async def test_a_request_that_slept_through_both_points_gets_one_reminder_not_two() -> None:
    clock = Clock()
    changes, _ = service(clock, ESCALATING)
    await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    clock.now = NOW + timedelta(hours=3, minutes=50)  # the workers were down through the first point
    [only] = await changes.decisions.due_reminders()
    assert only.number == 2 and only.escalates
    assert await changes.decisions.due_reminders() == []


async def test_a_decided_request_is_not_reminded_and_no_fallback_means_no_escalation() -> None:
    clock = Clock()
    changes, _ = service(clock, ReminderPolicy((0.5, 0.9)))
    decided = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await changes.decisions.approve(decided.id, "U0BOB")
    waiting = await changes.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="q")
    clock.now = NOW + timedelta(hours=3, minutes=50)
    [reminder] = await changes.decisions.due_reminders()
    assert reminder.request.id == waiting.id and not reminder.escalates


async def test_after_the_escalation_the_fallback_group_may_approve_and_the_approval_holds_when_it_runs() -> None:
    clock = Clock()
    changes, _ = service(clock, ESCALATING)
    request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    clock.now = NOW + timedelta(hours=2)
    assert (await changes.decisions.approve(request.id, "U0FRANK")).verdict == Verdict.NOT_ALLOWED  # not yet escalated
    clock.now = NOW + timedelta(hours=3, minutes=37)
    assert (await changes.decisions.approve(request.id, "U0FRANK")).verdict == Verdict.APPROVED
    done = await changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.succeeded, done


async def test_break_glass_never_escalates_to_the_fallback_group() -> None:
    clock = Clock()
    changes, _ = service(clock, ESCALATING)
    request = await changes.intake.request_emergency_rotation("contoso.test", requester="U0ALICE", reason="leak")
    clock.now = NOW + timedelta(hours=3, minutes=50)
    assert (await changes.decisions.approve(request.id, "U0FRANK")).verdict == Verdict.NOT_ALLOWED
    assert (await changes.queries.get(request.id)).state == RequestState.PENDING  # type: ignore[union-attr]


async def test_a_removal_stays_with_its_own_approvers_after_escalation_unless_its_table_says_otherwise() -> None:
    clock = Clock()
    changes, _ = service(clock, ESCALATING)
    request = await changes.intake.request_remove_all("contoso.test", requester="U0ALICE", reason="decommission")
    clock.now = NOW + timedelta(hours=3, minutes=50)  # escalated
    assert (await changes.decisions.approve(request.id, "U0FRANK")).verdict == Verdict.NOT_ALLOWED
    assert changes.authority.reminders.fallback_for(Action.REMOVE_ALL) is None
    # [approvals.remove_all] escalate = true: then the fallback group may
    opted_in = replace(ESCALATING, escalating=ESCALATING.escalating | {Action.REMOVE_ALL})
    changes, _ = service(clock := Clock(), opted_in)
    request = await changes.intake.request_remove_all("contoso.test", requester="U0ALICE", reason="decommission")
    clock.now = NOW + timedelta(hours=3, minutes=50)
    assert (await changes.decisions.approve(request.id, "U0FRANK")).verdict == Verdict.APPROVED


def test_the_configuration_says_which_actions_escalate() -> None:
    from bot.bootstrap.policy import reminder_policy
    from bot.config import load_bot_config

    example = Path(__file__).parents[2] / "examples" / "kerberos-bot.toml"
    assert reminder_policy(load_bot_config(example)).escalating == {Action.ROTATE}  # by default


async def test_the_requester_nudges_once_an_hour_and_nobody_else_can() -> None:
    clock = Clock()
    changes, store = service(clock, ESCALATING)
    request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    with pytest.raises(NotAllowed):
        await changes.decisions.nudge(request.id, "U0MALLORY")
    assert (await changes.decisions.nudge(request.id, "U0ALICE")).id == request.id
    clock.now += timedelta(minutes=20)
    with pytest.raises(RateLimited, match="try again in 40 min"):
        await changes.decisions.nudge(request.id, "U0ALICE")
    clock.now += timedelta(minutes=41)
    await changes.decisions.nudge(request.id, "U0ALICE")
    assert [e.actor for e in await store.audit(request.id) if e.event == "nudged"] == ["U0ALICE", "U0ALICE"]
