"""One signed history per request: every transition is an entry the bot signed, appended by the step that
makes it, and a record whose state, approvals, decision or outcome its history does not lead to is refused
at execution and nothing runs (issue: a denial or a withdrawal could be undone, and a failed removal set
back to approved ran a second time on the same approvals, by a writer of Redis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.domain.approvals import REPLICA_CLOCK_SKEW, ChangeRequest, RequestState, Verdict
from bot.domain.errors import KerberosModuleError
from bot.domain.history import Event, HistoryEntry
from bot.domain.integrity import Signer
from bot.domain.replay import disagreements
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeKerberosModule, on_prem_state
from tests.support.requests import a_request

KEY = b"h" * 32


def world(clock: Clock | None = None) -> tuple[ChangeEngine, FakeApprovalStore, FakeKerberosModule, FakeDirectory]:
    clock = clock or Clock()
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    store = FakeApprovalStore(clock)
    engine = engine_on_fakes(
        directories={"contoso.test": directory}, store=store, module=module, clock=clock, signer=Signer(KEY)
    )
    return engine, store, module, directory


def events(request: ChangeRequest) -> list[str]:
    return [e.event.value for e in request.history]


async def test_every_transition_is_a_signed_entry_and_the_record_agrees_with_them() -> None:
    engine, store, _module, _ = world()
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.approve(request.id, "U0BOB")
    done = await engine.executor.execute_next("w")
    assert isinstance(done, Execution) and done.succeeded
    stored = store.requests[request.id]
    assert events(stored)[:2] == ["filed", "approved"] and events(stored)[-1] == "succeeded"
    assert set(events(stored)[2:-1]) == {"step"}  # the journal: claimed, durable, re-validated, the module call
    assert stored.journal[0].split(" ", 1)[1] == "claimed by w"
    assert Signer(KEY).problems(stored) == []
    assert Signer(b"x" * 32).problems(stored)  # another key signed none of it


async def test_a_denial_set_back_to_pending_in_the_store_is_refused_and_nothing_runs() -> None:
    engine, store, module, _ = world()
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.deny(request.id, "U0BOB", "not now")
    # a writer of the store undoes the denial; an approver who finds it pending approves it
    store.requests[request.id] = replace(store.requests[request.id], state=RequestState.PENDING, decided_by=None)
    assert (await engine.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
    execution = await engine.executor.execute_next("w")
    assert isinstance(execution, Execution) and not execution.succeeded and module.set_calls == 0
    assert execution.request.state == RequestState.ATTENTION
    assert "approved while denied" in execution.outcome and "does not carry the bot's signature" in execution.outcome


async def test_a_failed_removal_set_back_to_approved_and_requeued_never_runs_again() -> None:
    engine, store, module, directory = world()
    request = await engine.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="q")
    await engine.decisions.approve(request.id, "U0BOB")
    module.error = KerberosModuleError("Access denied")
    failed = await engine.executor.execute_next("w")
    assert isinstance(failed, Execution) and not failed.succeeded
    module.error = None  # the world did not move: the removal failed, so the world binding alone would pass it
    store.requests[request.id] = replace(store.requests[request.id], state=RequestState.APPROVED, outcome=None)
    store.work.append(request.id)
    again = await engine.executor.execute_next("w")
    assert isinstance(again, Execution) and not again.succeeded
    assert "while failed" in again.outcome
    assert directory.state.trusted_domain is not None  # never removed on the approvals of the failed attempt


async def test_a_withdrawal_undone_in_the_store_never_runs() -> None:
    clock = Clock()
    engine, store, module, _ = world(clock)
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.approve(request.id, "U0BOB")
    # approved and waiting for its change window (as the executor defers it), then withdrawn
    store.requests[request.id] = replace(store.requests[request.id], waits_until=NOW + timedelta(hours=1))
    assert (await engine.decisions.cancel(request.id, "U0ALICE")).verdict == Verdict.CANCELLED
    store.requests[request.id] = replace(store.requests[request.id], state=RequestState.APPROVED, waits_until=None)
    store.work.append(request.id)
    execution = await engine.executor.execute_next("w")
    assert isinstance(execution, Execution) and not execution.succeeded and module.set_calls == 0
    assert "while cancelled" in execution.outcome


async def test_an_entry_signed_for_another_request_or_edited_does_not_verify() -> None:
    engine, store, _module, _ = world()
    first = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.approve(first.id, "U0BOB")
    other = await engine.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="q")
    signer = Signer(KEY)
    borrowed = store.requests[first.id].history[1]  # Bob's approval of the first, into the second
    stored = store.requests[other.id]
    forged = replace(stored, history=(*stored.history, borrowed), approvals=store.requests[first.id].approvals)
    assert "history entry 2" in signer.problems(forged)
    edited = replace(stored, history=(replace(stored.history[0], actor="U0MALLORY"),))
    assert "history entry 1" in signer.problems(edited)


def test_the_record_must_show_the_state_its_history_leads_to() -> None:
    signer = Signer(KEY)
    request = a_request()

    def entry(event: Event, actor: str = "", detail: str = "", at: timedelta = timedelta(minutes=1)) -> HistoryEntry:
        return signer.entry("r1", event, actor, NOW + at, detail)

    filed = entry(Event.FILED, "U0ALICE", at=timedelta(0))
    assert disagreements(request, ()) == ["it has no history"]
    assert disagreements(request, (filed,)) == []
    assert disagreements(replace(request, state=RequestState.EXPIRED), (filed,)) == []  # the store expires it
    assert disagreements(replace(request, state=RequestState.APPROVED), (filed,)) == [
        "its state (approved) is not the one its history leads to (pending)"
    ]
    late = entry(Event.APPROVED, "U0BOB", at=timedelta(hours=2))
    assert "history entry 2 approves outside the request's life" in disagreements(
        replace(request, state=RequestState.APPROVED), (filed, late)
    )
    # another replica took the click, reading Redis's clock a moment behind the one that filed it: not a forgery
    behind = entry(Event.APPROVED, "U0BOB", at=-timedelta(milliseconds=40))
    assert not [d for d in disagreements(replace(request, state=RequestState.APPROVED), (filed, behind)) if "life" in d]
    early = entry(Event.APPROVED, "U0BOB", at=-(REPLICA_CLOCK_SKEW + timedelta(seconds=1)))
    assert "history entry 2 approves outside the request's life" in disagreements(
        replace(request, state=RequestState.APPROVED), (filed, early)
    )
    denied = (filed, entry(Event.DENIED, "U0BOB", "no"))
    shown = replace(request, state=RequestState.DENIED, decided_by="U0CAROL")
    assert disagreements(shown, denied) == ["who decided it is not who its history says"]
    assert disagreements(replace(request, state=RequestState.PENDING), denied)[0].startswith("its state (pending)")


async def test_a_rollback_of_the_newest_entries_is_bounded_by_the_requests_time_to_live() -> None:
    """What signing cannot show: a writer who cuts the newest entries *and* sets the state back rolls the
    request back to a point it really passed. It then runs only as approved: on its signed approvals, on
    the world it was made on, and within its time to live from its approval."""
    clock = Clock()
    engine, store, module, directory = world(clock)
    request = await engine.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="q")
    await engine.decisions.approve(request.id, "U0BOB")
    module.error = KerberosModuleError("Access denied")
    await engine.executor.execute_next("w")
    module.error = None
    stored = store.requests[request.id]
    store.requests[request.id] = replace(
        stored, state=RequestState.APPROVED, outcome=None, history=stored.history[:2], journal=()
    )
    store.work.append(request.id)
    clock.now += timedelta(hours=2)  # past its time to live since the approval
    assert await engine.executor.execute_next("w") is None  # expired at the claim instead of running
    assert store.requests[request.id].state == RequestState.EXPIRED
    assert directory.state.trusted_domain is not None
