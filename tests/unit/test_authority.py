"""The stored request is the only authority: what a click carries decides nothing, the origin is
checked, people are counted once, and at execution the stored record is checked again (its MACs,
its approvers against the policy) before anything changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import Action, ActionPolicy, Approval, RequestState, Verdict
from bot.domain.integrity import Signer
from bot.domain.model import OnPremState
from bot.domain.verification import VerifiedIdentity
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.errors import NotAllowed
from bot.services.changes.executor import Execution
from bot.services.changes.holds import FreezeRules, freeze_record
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeFreezes, FakeGroups, FakeKerberosModule, on_prem_state

ADMINS, BREAKGLASS = "S0ADMINS", "S0BREAKGLASS"
ORIGIN = "T0STANDIN/A0KERBOT/C0PLATFORM"
KEY = b"k" * 32


GROUPS = {ADMINS: frozenset({"U0BOB", "U0CAROL"}), BREAKGLASS: frozenset({"U0DAVE", "U0ERIN"})}


def world(
    signer: Signer | None = None,
    *,
    groups: FakeGroups | None = None,
    store: FakeApprovalStore | None = None,
    raise_rotation_to: int | None = None,
) -> tuple[ChangeEngine, FakeApprovalStore, FakeKerberosModule, FakeDirectory]:
    """A service on fakes; ``store`` shares one with another service (the bot restarted on a changed
    configuration), ``raise_rotation_to`` makes that configuration ask more approvals for a rotation."""
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    store = store or FakeApprovalStore()
    groups = groups or FakeGroups(dict(GROUPS))
    policies = {
        Action.ROTATE: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS})),
        Action.ROTATE_FORCE: ActionPolicy(2, timedelta(hours=1), frozenset(), frozenset({BREAKGLASS})),
        Action.REMOVE_TDO: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS})),
        Action.SETUP: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS})),
        Action.REMOVE_ALL: ActionPolicy(2, timedelta(hours=1), frozenset(), frozenset({BREAKGLASS})),
    }
    if raise_rotation_to is not None:
        policies[Action.ROTATE] = replace(policies[Action.ROTATE], approvals_required=raise_rotation_to)
    service = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=groups,
        policies=policies,
        clock=lambda: NOW,
        signer=signer or Signer(KEY),
    )
    return service, store, module, directories["contoso.test"]


async def forced(service: ChangeEngine) -> str:
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="x", force=True, origin=ORIGIN
    )
    return request.id


async def test_the_approver_groups_come_from_the_stored_action_not_from_the_click() -> None:
    service, store, _, _ = world()
    request_id = await forced(service)  # rotate --force: only the break-glass group approves
    result = await service.decisions.approve(request_id, "U0BOB", ORIGIN)  # in the rotate group, not in break-glass
    assert result.verdict == Verdict.NOT_ALLOWED
    assert store.requests[request_id].approvals == ()
    assert any(e.event == "refused" and "not_allowed" in e.detail for e in store.entries)


async def test_a_click_from_another_channel_is_refused_and_audited() -> None:
    service, store, _, _ = world()
    request_id = await forced(service)
    result = await service.decisions.approve(request_id, "U0DAVE", "T0STANDIN/A0KERBOT/C0OTHER")
    assert result.verdict == Verdict.WRONG_ORIGIN and store.requests[request_id].approvals == ()
    [refusal] = [e for e in store.entries if e.event == "refused"]
    assert "wrong_origin" in refusal.detail and "C0OTHER" in refusal.detail
    for origin in ("T0OTHER/A0KERBOT/C0PLATFORM", "T0STANDIN/A0EVIL/C0PLATFORM"):
        assert (await service.decisions.approve(request_id, "U0DAVE", origin)).verdict == Verdict.WRONG_ORIGIN


async def test_a_button_names_only_a_request_the_bot_signed() -> None:
    service, _, _, _ = world()
    request_id = await forced(service)
    request = await service.queries.get(request_id)
    assert request is not None
    value = service.decisions.button_value(request)
    assert service.decisions.request_id_of(value) == request_id
    other_key = world(Signer(b"o" * 32))[0]
    assert other_key.decisions.request_id_of(value) is None
    assert service.decisions.request_id_of(f"{request_id}.{'0' * 22}") is None
    assert service.decisions.request_id_of(f"{request_id}|rotate") is None


async def test_refusals_are_audited_once_per_user_request_and_verdict() -> None:
    service, store, _, _ = world()
    request_id = await forced(service)
    for _ in range(50):
        await service.decisions.approve(request_id, "U0MALLORY", ORIGIN)
    refusals = [e for e in store.entries if e.event == "refused"]
    assert len(refusals) == 1 and refusals[0].actor == "U0MALLORY"


def identity(oid: str, upn: str) -> VerifiedIdentity:
    return VerifiedIdentity(oid, upn, NOW - timedelta(minutes=1), mfa=True)


async def test_two_slack_accounts_of_one_entra_user_count_once() -> None:
    service, store, _, _ = world()
    request_id = await forced(service)
    signer = Signer(KEY)
    dave = identity("oid-dave", "dave@contoso.test")
    for user in ("U0DAVE", "U0DAVE2"):
        approval = Approval(user, NOW, dave)
        result = await store.approve(
            request_id, user, NOW, dave, mac=signer.approval_mac(request_id, approval), origin=ORIGIN
        )
    assert result.verdict == Verdict.SAME_PERSON
    assert [a.approver for a in store.requests[request_id].approvals] == ["U0DAVE"]


async def test_the_requesters_own_entra_account_never_approves() -> None:
    service, store, _, _ = world()
    request_id = await forced(service)
    store.requests[request_id] = replace(store.requests[request_id], requester_upn="alice@contoso.test")
    alice = identity("oid-alice", "alice@contoso.test")
    result = await store.approve(request_id, "U0ALICE2", NOW, alice, origin=ORIGIN)
    assert result.verdict == Verdict.SELF_APPROVAL


# -- at execution: the stored record again --------------------------------------------------------
async def approved_rotation(service: ChangeEngine) -> str:
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="x", force=False, origin=ORIGIN
    )
    assert (await service.decisions.approve(request.id, "U0BOB", ORIGIN)).verdict == Verdict.APPROVED
    return request.id


async def test_a_record_forged_in_the_store_is_refused_flagged_and_nothing_runs() -> None:
    service, store, module, _ = world()
    request_id = await approved_rotation(service)
    # someone with write access to Redis turns the approved rotation into a remove-all
    store.requests[request_id] = replace(store.requests[request_id], action=Action.REMOVE_ALL)
    execution = await service.executor.execute_next("w")
    assert isinstance(execution, Execution) and not execution.succeeded
    assert execution.request.state == RequestState.ATTENTION
    assert "does not carry the bot's signature" in execution.outcome
    assert module.set_calls == 0 and "contoso.test" in module.cloud


async def test_an_approval_added_in_the_store_is_refused() -> None:
    service, store, module, _ = world()
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="x", force=True, origin=ORIGIN
    )
    await service.decisions.approve(request.id, "U0DAVE", ORIGIN)
    forged = Approval("U0ERIN", NOW, None, mac="0" * 64)
    stored = store.requests[request.id]
    store.requests[request.id] = replace(stored, approvals=(*stored.approvals, forged), state=RequestState.APPROVED)
    store.work.append(request.id)
    execution = await service.executor.execute_next("w")
    assert isinstance(execution, Execution) and execution.request.state == RequestState.ATTENTION
    assert "the approval by U0ERIN" in execution.outcome and module.set_calls == 0


async def test_an_approver_removed_from_the_group_before_execution_stops_it() -> None:
    groups = FakeGroups(dict(GROUPS))
    service, store, module, _ = world(groups=groups)
    request_id = await approved_rotation(service)
    groups.groups[ADMINS] = frozenset({"U0CAROL"})  # Bob left the group
    execution = await service.executor.execute_next("w")
    assert isinstance(execution, Execution) and execution.request.state == RequestState.FAILED
    assert "no longer in an approver group" in execution.outcome and module.set_calls == 0
    assert store.requests[request_id].state == RequestState.FAILED


@pytest.mark.parametrize("required", [1, 2])
async def test_a_policy_raised_after_the_approval_is_honoured_at_execution(required: int) -> None:
    first, store, _, _ = world()
    await approved_rotation(first)
    service, _, _, _ = world(store=store, raise_rotation_to=required)  # restarted on a stricter configuration
    execution = await service.executor.execute_next("w")
    assert isinstance(execution, Execution)
    assert execution.succeeded == (required == 1), execution.outcome


async def test_requests_and_clicks_are_rate_limited_per_user_with_a_clear_message() -> None:
    from bot.services.changes.errors import RateLimited
    from bot.services.changes.limits import RateLimits
    from tests.support.fakes import FakeRateLimiter

    service, store, module, directory = world()
    limited = engine_on_fakes(
        store=store,
        module=module,
        directories={"contoso.test": directory},
        groups=FakeGroups(dict(GROUPS)),
        policies=service.authority.policies,
        clock=lambda: NOW,
        signer=Signer(KEY),
        limiter=FakeRateLimiter(lambda: NOW),
        rate_limits=RateLimits(requests_per_hour=2, clicks_per_minute=3),
    )
    for _ in range(2):
        request = await limited.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=True)
    with pytest.raises(RateLimited, match=r"2 requests an hour.*Try again in 1800 s"):
        await limited.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=True)
    await limited.intake.request_rotation("contoso.test", requester="U0ZOE", reason="x", force=True)  # per user
    for _ in range(3):
        await limited.decisions.approve(request.id, "U0MALLORY")
    with pytest.raises(RateLimited, match="3 clicks a minute"):
        await limited.decisions.approve(request.id, "U0MALLORY")
    # withdrawing and nudging unknown ids (each try audited) go no faster than clicks
    for _ in range(3):
        await limited.decisions.cancel("unknown-id", "U0TRENT")
    with pytest.raises(RateLimited, match="3 clicks a minute"):
        await limited.decisions.cancel("unknown-id", "U0TRENT")
    with pytest.raises(RateLimited, match="3 clicks a minute"):
        await limited.decisions.nudge("unknown-id", "U0TRENT")


async def test_a_worker_that_lost_its_claim_before_the_module_call_changes_nothing() -> None:
    clock = Clock()
    store = FakeApprovalStore(clock)
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    engine = engine_on_fakes(directories={"contoso.test": directory}, store=store, module=module, clock=clock)
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.approve(request.id, "U0BOB")
    read = directory.read_kerberos_objects

    async def stopped_past_its_lease() -> OnPremState:
        # the worker is stopped right here longer than its lease; another worker flags its request
        state = await read()
        clock.now += timedelta(minutes=2)
        [flagged] = await engine.executor.recover()
        assert flagged.id == request.id
        return state

    directory.read_kerberos_objects = stopped_past_its_lease  # type: ignore[method-assign]
    execution = await engine.executor.execute_next("w1")
    assert isinstance(execution, Execution) and module.set_calls == 0
    assert "lost its claim" in execution.outcome and "nothing was changed" in execution.outcome
    assert (await store.get(request.id)).state == RequestState.ATTENTION  # type: ignore[union-attr]


async def executed_with_one_approval_dated(before_filing: timedelta) -> tuple[Execution, FakeKerberosModule]:
    """An approved rotation whose one approval the bot signed, for this request, dated ``before_filing`` before the
    request was filed; carried out."""
    signer = Signer(KEY)
    service, store, module, _ = world(signer)
    request_id = await approved_rotation(service)
    stored = store.requests[request_id]
    approval = Approval("U0BOB", stored.created_at - before_filing)
    approval = replace(approval, mac=signer.approval_mac(request_id, approval))
    store.requests[request_id] = replace(stored, approvals=(approval,))
    execution = await service.executor.execute_next("w")
    assert isinstance(execution, Execution)
    return execution, module


async def test_an_approval_dated_outside_the_requests_life_does_not_count() -> None:
    execution, module = await executed_with_one_approval_dated(timedelta(hours=1))
    assert module.set_calls == 0
    assert "dated outside the request's life" in execution.outcome


async def test_an_approval_dated_a_moment_before_the_filing_by_another_replicas_clock_counts() -> None:
    # the replica that took the click reads Redis's clock 40 ms behind the one that filed the request
    execution, module = await executed_with_one_approval_dated(timedelta(milliseconds=40))
    assert module.set_calls == 1, execution.outcome


async def test_a_request_replayed_on_a_world_that_moved_on_changes_nothing() -> None:
    service, store, _module, directory = world()
    request = await service.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="x", origin=ORIGIN)
    await service.decisions.approve(request.id, "U0BOB", ORIGIN)
    done = await service.executor.execute_next("w")
    assert isinstance(done, Execution) and done.succeeded and directory.state.trusted_domain is None
    # the trust is set up again (new keys); a Redis writer rolls the old removal back to approved (its state and
    # its history cut back to the approval: a point it really passed, which signing alone cannot tell) and
    # re-queues it
    directory.state = on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=1))
    stored = store.requests[request.id]
    store.requests[request.id] = replace(
        stored, state=RequestState.APPROVED, outcome=None, history=stored.history[:2], journal=()
    )
    store.work.append(request.id)
    replayed = await service.executor.execute_next("w")
    assert isinstance(replayed, Execution) and not replayed.succeeded
    assert "changed since it was requested" in replayed.outcome
    assert directory.state.trusted_domain is not None  # the new trust stands: removed once, never twice


async def test_where_the_policy_asks_a_freeze_and_its_end_need_a_verified_sign_in_named_in_the_audit() -> None:
    store = FakeApprovalStore()
    service = engine_on_fakes(
        directories={"contoso.test": FakeDirectory(on_prem_state("contoso.test"))},
        store=store,
        groups=FakeGroups(dict(GROUPS)),
        policies={Action.ROTATE: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS}))},
        clock=lambda: NOW,
        freezes=FakeFreezes(),
        freeze_rules=FreezeRules(verified=True),
    )
    holds, until = service.holds, NOW + timedelta(days=1)
    assert holds.needs_sign_in
    with pytest.raises(NotAllowed, match="needs a verified Entra sign-in"):
        await holds.freeze("contoso.test", by="U0BOB", until=until, reason="incident")
    assert await holds.freeze_of("contoso.test") is None
    bob = identity("oid-bob", "bob@contoso.test")
    await holds.freeze("contoso.test", by="U0BOB", until=until, reason="incident", identity=bob)
    with pytest.raises(NotAllowed, match="needs a verified Entra sign-in"):
        await holds.thaw("contoso.test", by="U0BOB")
    assert await holds.thaw("contoso.test", by="U0BOB", identity=bob)
    details = [e.detail for e in await store.audit(freeze_record("contoso.test"))]
    assert all("bob@contoso.test" in d for d in details) and len(details) == 2
