"""Change windows in the change service, on fakes with a controlled clock: a change approved outside its
domain's window waits for it (its card says when) or is refused, per policy; nothing runs early, its time
to live counts from the opening, the time it waits for cannot be moved in the store, a waiting change can
be withdrawn, and break-glass runs at once and says that it ran outside the window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.domain.windows import ChangeWindows
from bot.services.changes.executor import Deferral, Execution
from tests.support.engine import Clock
from tests.support.fakes import NOW, on_prem_state
from tests.support.worlds import ADMINS, OneDomain, one_domain

# NOW is Wednesday 2026-11-25 12:00 UTC; the window opens at 22:00 for four hours on weeknights
NIGHTS = ChangeWindows.parse([("0 22 * * mon-thu", 4)])
OPENS = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


def world(windows: ChangeWindows, clock: Clock, **policies: ActionPolicy) -> OneDomain:
    default = ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS}))
    table = {a: policies.get(a.value, default) for a in Action}
    return one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)),
        clock=clock,
        windows=windows,
        policies=table,
        groups={ADMINS: frozenset({"U0BOB", "U0CAROL"})},
    )


async def rotation_approved(w: OneDomain) -> str:
    request = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    assert (await w.changes.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
    return request.id


async def test_approved_outside_the_window_it_waits_and_runs_once_when_the_window_opens() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)
    request = await w.changes.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    timing = w.changes.holds.timing_of(request)
    assert timing is not None and "closed now" in timing
    assert "2026-11-25 22:00 UTC" in timing  # the card says when it would run
    await w.changes.decisions.approve(request.id, "U0BOB")

    deferred = await w.changes.executor.execute_next("worker")
    assert isinstance(deferred, Deferral) and deferred.runs_at == OPENS
    waiting = deferred.request
    assert waiting.state == RequestState.APPROVED and waiting.waits_until == OPENS
    assert waiting.outcome is not None and "runs when the window opens" in waiting.outcome
    assert w.module.set_calls == 0
    assert "waiting" in [e.event for e in await w.store.audit(request.id)]

    clock.now = OPENS - timedelta(minutes=1)
    assert await w.changes.executor.execute_next("worker") is None  # not a minute early
    clock.now = OPENS + timedelta(minutes=5)
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.succeeded, done
    assert w.module.set_calls == 1
    assert await w.changes.executor.execute_next("worker") is None  # once


async def test_approved_inside_the_window_it_runs_at_once_and_the_card_says_until_when() -> None:
    clock = Clock()
    clock.now = OPENS + timedelta(hours=1)
    w = world(NIGHTS, clock)
    pending = await w.changes.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="x")
    assert "open now, until 2026-11-26 02:00 UTC" in (w.changes.holds.timing_of(pending) or "")
    await rotation_approved(w)
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.succeeded


async def test_its_time_to_live_counts_from_the_opening_not_from_the_approval() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)  # a 4-hour time to live; the window opens 10 hours after the approval
    request_id = await rotation_approved(w)
    assert isinstance(await w.changes.executor.execute_next("worker"), Deferral)
    clock.now = OPENS + timedelta(hours=3)
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.succeeded and done.request.id == request_id


async def test_no_worker_through_the_whole_window_and_past_its_time_to_live_it_expires_unrun() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)
    request_id = await rotation_approved(w)
    assert isinstance(await w.changes.executor.execute_next("worker"), Deferral)
    clock.now = OPENS + timedelta(hours=5)  # the bot was down from before the opening until now
    assert await w.changes.executor.execute_next("worker") is None
    expired = await w.changes.queries.get(request_id)
    assert expired is not None and expired.state == RequestState.EXPIRED and w.module.set_calls == 0
    assert [r.id for r in await w.changes.decisions.expire_due()] == [request_id]  # its card is told


async def test_the_time_it_waits_for_cannot_be_moved_in_the_store() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)
    request_id = await rotation_approved(w)
    assert isinstance(await w.changes.executor.execute_next("worker"), Deferral)
    # someone with write access to the store moves the opening a week on, to keep an approval alive
    stored = w.store.requests[request_id]
    w.store.requests[request_id] = replace(stored, waits_until=OPENS + timedelta(days=7))
    w.store.waiting[request_id] = OPENS
    clock.now = OPENS + timedelta(minutes=1)
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and not done.succeeded
    assert done.request.state == RequestState.ATTENTION and "the time it waits for" in done.outcome
    assert w.module.set_calls == 0


async def test_a_domain_whose_policy_refuses_changes_outside_the_window_refuses_them() -> None:
    clock = Clock()
    w = world(ChangeWindows.parse([("0 22 * * mon-thu", 4)], outside="refuse"), clock)
    request = await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    assert "is refused" in (w.changes.holds.timing_of(request) or "")
    await w.changes.decisions.approve(request.id, "U0BOB")
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and not done.succeeded
    assert "outside the change window" in done.outcome and "Not started" in done.outcome
    assert w.module.set_calls == 0


async def test_break_glass_runs_at_once_outside_the_window_and_says_so() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)
    request = await w.changes.intake.request_emergency_rotation(
        "contoso.test", requester="U0ALICE", reason="leaked key"
    )
    assert "Break-glass" in (w.changes.holds.timing_of(request) or "")
    await w.changes.decisions.approve(request.id, "U0BOB")
    done = await w.changes.executor.execute_next("worker")
    assert isinstance(done, Execution) and done.succeeded
    assert "ran outside the change window" in done.outcome and w.module.set_calls == 1


async def test_a_waiting_change_is_withdrawn_by_an_approver_but_not_by_a_bystander() -> None:
    clock = Clock()
    w = world(NIGHTS, clock)
    request_id = await rotation_approved(w)
    assert isinstance(await w.changes.executor.execute_next("worker"), Deferral)
    assert (await w.changes.decisions.cancel(request_id, "U0MALLORY")).verdict == Verdict.NOT_REQUESTER
    result = await w.changes.decisions.cancel(request_id, "U0CAROL")
    assert result.verdict == Verdict.CANCELLED and result.request is not None
    assert result.request.state == RequestState.CANCELLED and result.request.decided_by == "U0CAROL"
    clock.now = OPENS + timedelta(minutes=1)
    assert await w.changes.executor.execute_next("worker") is None and w.module.set_calls == 0


async def test_without_windows_the_card_says_nothing_of_them() -> None:
    w = one_domain(on_prem_state("contoso.test"))
    request = await w.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    assert w.changes.holds.timing_of(request) is None
