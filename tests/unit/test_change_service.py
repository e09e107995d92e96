"""The change service with in-memory fakes: who may ask, what is refused up front, execution once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from bot.actions.base import PreflightError
from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.domain.model import KerberosServerReport
from bot.domain.ports import SetServerOptions
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.errors import NotAllowed
from bot.services.changes.executor import Execution
from bot.services.changes.limits import ExecutionLimits
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, cloud_of, on_prem_state

ADMINS, PLATFORM = "S0ADMINS", "S0PLATFORM"


World = tuple[ChangeEngine, FakeApprovalStore, FakeKerberosModule, dict[str, FakeDirectory], Clock]


def make(
    key_age: timedelta = timedelta(days=40),
    limits: ExecutionLimits | None = None,
    *,
    directory: type[FakeDirectory] = FakeDirectory,
    forest_roots: dict[str, str] | None = None,
) -> World:
    directories = {"contoso.test": directory(on_prem_state("contoso.test", key_updated_on=NOW - key_age))}
    module = FakeKerberosModule.in_step(directories)
    store = FakeApprovalStore()
    clock = Clock(NOW)
    policies = {
        Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset({PLATFORM}), frozenset({ADMINS})),
        Action.ROTATE_FORCE: ActionPolicy(2, timedelta(hours=1), frozenset({PLATFORM}), frozenset({ADMINS})),
    }
    groups = FakeGroups({ADMINS: frozenset({"U0BOB", "U0CAROL", "U0ALICE"}), PLATFORM: frozenset({"U0ALICE"})})
    service = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=groups,
        policies=policies,
        clock=clock,
        limits=limits or ExecutionLimits(),
        forest_roots=forest_roots,
    )
    return service, store, module, directories, clock


async def test_rotation_runs_once_after_approval_and_says_what_follows() -> None:
    service, _store, module, _directories, _ = make()
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    assert request.approvals_required == 1 and request.expected_key_version == 53325
    assert any("-RotateServerKey" in step for step in request.plan)
    assert (await service.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
    execution = await service.executor.execute_next("worker")
    assert isinstance(execution, Execution) and execution.succeeded
    assert "53325 -> 54325" in execution.outcome and "several hours" in execution.outcome
    assert "rotate again" in execution.outcome
    assert execution.request.state == RequestState.SUCCEEDED
    assert module.set_calls == 1
    assert await service.executor.execute_next("worker") is None


async def test_requester_outside_the_groups_is_refused() -> None:
    service, *_ = make()
    with pytest.raises(NotAllowed):
        await service.intake.request_rotation("contoso.test", requester="U0MALLORY", reason="x", force=False)


async def test_a_reason_is_required() -> None:
    service, *_ = make()
    with pytest.raises(Exception, match="Say why"):
        await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="  ", force=False)


async def test_within_24_hours_only_forced_and_the_refusal_says_so() -> None:
    service, store, *_ = make(key_age=timedelta(hours=3))
    with pytest.raises(PreflightError, match="needs `--force` \\(2 approvals\\)"):
        await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    assert store.requests == {}  # refused before any approver saw it
    forced = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="repair", force=True)
    assert forced.action == Action.ROTATE_FORCE and forced.approvals_required == 2


async def test_no_server_is_refused_up_front() -> None:
    service, _store, _, directories, _ = make()
    directories["contoso.test"].state = on_prem_state("contoso.test", with_server=False, with_tdo=False)
    with pytest.raises(PreflightError, match="nothing to rotate"):
        await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)


async def test_approver_outside_the_group_is_refused_and_audited() -> None:
    service, store, *_ = make()
    request = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    result = await service.decisions.approve(request.id, "U0MALLORY")
    assert result.verdict == Verdict.NOT_ALLOWED
    assert [e.event for e in await store.audit(request.id)] == ["requested", "refused"]
    stored = await store.get(request.id)
    assert stored is not None and stored.state == RequestState.PENDING


async def test_requester_in_the_approver_group_still_cannot_approve() -> None:
    service, *_ = make()
    request = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    assert (await service.decisions.approve(request.id, "U0ALICE")).verdict == Verdict.SELF_APPROVAL


async def test_stale_request_stops_without_changing_anything() -> None:
    service, _store, module, _directories, _ = make()
    request = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    await service.decisions.approve(request.id, "U0BOB")
    # someone rotated in the meantime
    await module.set_server("contoso.test", SetServerOptions(rotate_server_key=True))
    calls = module.set_calls
    execution = await service.executor.execute_next("worker")
    assert isinstance(execution, Execution) and not execution.succeeded
    assert "the key changed since the request" in execution.outcome
    assert module.set_calls == calls
    assert execution.request.state == RequestState.FAILED


async def test_one_change_per_domain_at_a_time_the_second_waits_then_runs() -> None:
    service, store, module, _, _clock = make()
    module.hang = asyncio.Event()
    first = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    await service.decisions.approve(first.id, "U0BOB")
    running = asyncio.create_task(service.executor.execute_next("worker-1"))
    await module.entered.wait()
    second = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="y", force=True)
    await service.decisions.approve(second.id, "U0BOB")
    await service.decisions.approve(second.id, "U0CAROL")
    assert await service.executor.execute_next("worker-2") is None  # the domain is busy: it waits, it does not fail
    stored = await store.get(second.id)
    assert stored is not None and stored.state == RequestState.APPROVED
    module.hang.set()
    assert (await running) is not None
    done = await service.executor.execute_next("worker-2")  # it ran, re-validated against the key the first one made
    assert (
        isinstance(done, Execution)
        and done.request.id == second.id
        and "the key changed since the request" in done.outcome
    )


def make_forest() -> tuple[ChangeEngine, dict[str, FakeDirectory]]:
    """contoso.test is the forest root, emea.contoso.test a child without a server yet."""
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", with_tdo=False)),
        "emea.contoso.test": FakeDirectory(on_prem_state("emea.contoso.test", with_server=False, with_tdo=False)),
    }
    policies = {a: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS})) for a in Action}
    service = engine_on_fakes(
        store=FakeApprovalStore(),
        module=FakeKerberosModule.in_step(directories),
        directories=directories,
        groups=FakeGroups({ADMINS: frozenset({"U0BOB"})}),
        policies=policies,
        clock=lambda: NOW,
        forest_roots={"emea.contoso.test": "contoso.test"},
    )
    return service, directories


async def test_child_domain_setup_waits_for_the_forest_root_and_explains_0x549() -> None:
    service, directories = make_forest()
    with pytest.raises(PreflightError, match="forest root first.*0x549"):
        await service.intake.request_setup("emea.contoso.test", requester="U0ALICE", reason="x")
    directories["contoso.test"].state = on_prem_state("contoso.test", with_tdo=True)
    request = await service.intake.request_setup("emea.contoso.test", requester="U0ALICE", reason="x")
    assert request.top_level_names == ()
    assert not any("-SetupCloudTrust" in step for step in request.plan)
    assert any("lives in the forest root contoso.test" in step for step in request.plan)


async def test_root_setup_carries_sovereign_top_level_names() -> None:
    service, _ = make_forest()
    request = await service.intake.request_setup(
        "contoso.test", requester="U0ALICE", reason="x", top_level_names=("usgovcloudapi.net", "windows.net")
    )
    assert request.plan[0] == (
        'Set-AzureADKerberosServer -Domain contoso.test -SetupCloudTrust -TopLevelNames "usgovcloudapi.net,windows.net"'
    )
    assert request.top_level_names == ("usgovcloudapi.net", "windows.net")


async def test_setup_of_a_complete_root_is_refused() -> None:
    service, directories = make_forest()
    directories["contoso.test"].state = on_prem_state("contoso.test", with_tdo=True)
    with pytest.raises(PreflightError, match="nothing to set up"):
        await service.intake.request_setup("contoso.test", requester="U0ALICE", reason="x")


async def test_removing_a_missing_tdo_is_refused() -> None:
    service, _ = make_forest()
    with pytest.raises(PreflightError, match="no trusted domain object"):
        await service.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="x")


async def test_pending_requests_expire_on_the_sweep() -> None:
    service, _store, _module, _directories, clock = make()
    request = await service.intake.request_rotation("contoso.test", requester="U0ALICE", reason="x", force=False)
    assert await service.decisions.expire_due() == []
    clock.now = NOW + timedelta(hours=5)
    [expired] = await service.decisions.expire_due()
    assert expired.id == request.id and expired.state == RequestState.EXPIRED


class LaggingDirectory(FakeDirectory):
    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        return {"ldaps://dc1.contoso.test": 60000, "ldaps://dc2.contoso.test": 53325, "ldaps://dc3.contoso.test": None}


async def test_following_the_key_names_the_dcs_that_lag() -> None:
    service, *_ = make(directory=LaggingDirectory)
    result = await service.queries.follow_key("contoso.test", 60000, interval=timedelta(0), give_up_after=timedelta(0))
    assert result.agreed == ("ldaps://dc1.contoso.test",)
    assert result.lagging == ("ldaps://dc2.contoso.test", "ldaps://dc3.contoso.test")


# -- rotation and the trusted domain object (the source document's "Rotate the Kerberos Key") --------
SetServer = Callable[[str, SetServerOptions], Awaitable[KerberosServerReport]]


def _recording(module: FakeKerberosModule) -> list[SetServerOptions]:
    seen: list[SetServerOptions] = []
    original: SetServer = module.set_server

    async def set_server(domain: str, options: SetServerOptions) -> KerberosServerReport:
        seen.append(options)
        return await original(domain, options)

    module.set_server = set_server  # type: ignore[method-assign,assignment]
    return seen


async def _approved_rotation(service: ChangeEngine, force: bool = False) -> str:
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=force
    )
    for approver in ("U0BOB", "U0CAROL")[: request.approvals_required]:
        await service.decisions.approve(request.id, approver)
    return request.id


async def test_a_rotation_with_the_cloud_trust_rotates_the_trust_keys_too() -> None:
    service, _store, module, directories, _ = make()
    seen = _recording(module)
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    assert request.plan[0] == "Set-AzureADKerberosServer -Domain contoso.test -SetupCloudTrust -RotateServerKey"
    assert any("trustAuthIncoming" in step and "windows.net" in step for step in request.plan)
    await service.decisions.approve(request.id, "U0BOB")
    before = directories["contoso.test"].state.trusted_domain
    execution = await service.executor.execute_next("worker")
    assert isinstance(execution, Execution) and execution.succeeded, execution
    assert seen == [
        SetServerOptions(rotate_server_key=True, force=False, setup_cloud_trust=True, top_level_names=("windows.net",))
    ]
    after = directories["contoso.test"].state.trusted_domain
    assert before is not None and after is not None and after.keys_updated_on != before.keys_updated_on
    assert "trusted domain object has new keys too" in execution.outcome


async def test_a_fido_only_domain_or_a_child_domain_rotates_the_service_account_alone() -> None:
    service, _store, module, directories, _ = make()
    directories["contoso.test"].state = on_prem_state(
        "contoso.test", key_updated_on=NOW - timedelta(days=40), with_tdo=False
    )
    seen = _recording(module)
    request = await service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly", force=False
    )
    assert request.plan[0] == "Set-AzureADKerberosServer -Domain contoso.test -RotateServerKey"
    assert any("FIDO only" in step for step in request.plan)
    await service.decisions.approve(request.id, "U0BOB")
    assert isinstance(execution := await service.executor.execute_next("worker"), Execution) and execution.succeeded
    assert seen[0].setup_cloud_trust is False

    # a child: its trust lives in the root
    child, _store, _module, _directories, _ = make(forest_roots={"contoso.test": "root.test"})
    request = await child.intake.request_rotation("contoso.test", requester="U0ALICE", reason="quarterly", force=False)
    assert "-SetupCloudTrust" not in request.plan[0] and any("forest root" in s for s in request.plan)


async def test_a_module_that_leaves_the_trust_keys_as_they_were_is_a_failure() -> None:
    service, _store, module, _directories, _ = make()
    original: SetServer = module.set_server

    async def service_key_only(domain: str, options: SetServerOptions) -> KerberosServerReport:
        return await original(domain, SetServerOptions(rotate_server_key=True, force=options.force))

    module.set_server = service_key_only  # type: ignore[method-assign,assignment]
    await _approved_rotation(service)
    execution = await service.executor.execute_next("worker")
    assert isinstance(execution, Execution) and not execution.succeeded
    assert "trusted domain object's keys did not change" in execution.outcome


async def test_setting_up_over_a_server_this_tenant_does_not_know_says_so_and_needs_more_approvals() -> None:
    """One domain, one tenant: the server in AD may serve another tenant, whose trust a setup overwrites."""
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test", with_tdo=False))}
    module = FakeKerberosModule.in_step(directories)
    module.cloud.pop("contoso.test", None)  # AD objects without an Entra object in this tenant
    policies = {
        Action.SETUP: ActionPolicy(2, timedelta(hours=1), frozenset(), frozenset({ADMINS})),
        Action.REMOVE_ALL: ActionPolicy(3, timedelta(hours=1), frozenset(), frozenset({ADMINS})),
    }
    groups = FakeGroups({ADMINS: frozenset({"U0BOB", "U0CAROL", "U0DAVE"})})
    service = engine_on_fakes(
        store=FakeApprovalStore(),
        module=module,
        directories=directories,
        groups=groups,
        policies=policies,
        clock=Clock(NOW),
    )
    request = await service.intake.request_setup("contoso.test", requester="U0ALICE", reason="new tenant")
    assert request.plan[0].startswith("WARNING: AD already holds an Entra Kerberos server (krbtgt_25614)")
    assert "overwrites that tenant's trust" in request.plan[0]
    assert request.approvals_required == 3
    assert (await service.decisions.approve(request.id, "U0BOB")).verdict == Verdict.RECORDED
    assert (await service.decisions.approve(request.id, "U0CAROL")).verdict == Verdict.RECORDED  # not yet: 2 of 3
    assert (await service.decisions.approve(request.id, "U0DAVE")).verdict == Verdict.APPROVED
    # with this tenant's object in Entra, a setup (of the missing trust) is an ordinary one
    module.cloud["contoso.test"] = cloud_of(directories["contoso.test"].state)  # type: ignore[assignment]
    ordinary = await service.intake.request_setup("contoso.test", requester="U0ALICE", reason="add the trust")
    assert ordinary.approvals_required == 2 and not ordinary.plan[0].startswith("WARNING")
