"""Operator-executes mode on fakes: the handover (who, the command, the limit, signed), and the verdict the bot
reaches from AD and Entra's audit log alone (verified, another effect, someone else, nothing in time)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import Action, ActionPolicy, RequestState
from bot.domain.errors import EntraUnavailable
from bot.domain.history import Event
from bot.domain.model import AuditEvent
from bot.domain.operators import OperatorPolicy, Verdict, handover_of
from bot.domain.ports import SetServerOptions
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.errors import NotAllowed
from bot.services.changes.executor import Execution, HandedOver
from bot.services.changes.limits import RateLimits
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import (
    NOW,
    FakeDirectory,
    FakeEntra,
    FakeGroups,
    FakeKerberosModule,
    FakeRateLimiter,
    on_prem_state,
)

ADMINS, OPS = "S0ADMINS", "S0OPS"
ACCOUNTS = {
    "U0ALICE": "alice@contoso.test",
    "U0BOB": "bob@contoso.test",
    "U0OLGA": "olga@contoso.test",
    "U0OMAR": "omar@contoso.test",
}


async def account_of(user: str) -> str | None:
    return ACCOUNTS.get(user)


class World:
    def __init__(
        self,
        *,
        required: int = 1,
        operators: frozenset[str] = frozenset({"U0OLGA"}),
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.clock = Clock(NOW)
        self.directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
        self.directories = {"contoso.test": self.directory}
        self.module = FakeKerberosModule.in_step(self.directories, clock=self.clock)
        self.entra = FakeEntra()
        self.store = FakeApprovalStore(self.clock)
        self.engine: ChangeEngine = engine_on_fakes(
            store=self.store,
            module=self.module,
            directories=self.directories,
            groups=FakeGroups({ADMINS: frozenset({"U0BOB", "U0CAROL"}), OPS: operators}),
            policies={a: ActionPolicy(required, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action},
            clock=self.clock,
            entra=self.entra,
            operator_policy=OperatorPolicy(groups=frozenset({OPS}), domains=frozenset({"contoso.test"})),
            operator_accounts=account_of,
            limiter=FakeRateLimiter(self.clock) if rate_limits else None,
            rate_limits=rate_limits,
        )

    async def approved_rotation(self) -> str:
        request = await self.engine.intake.request_rotation(
            "contoso.test", requester="U0ALICE", reason="quarterly", force=False
        )
        for approver in ("U0BOB", "U0CAROL")[: request.approvals_required]:
            await self.engine.decisions.approve(request.id, approver)
        return request.id

    async def operator_runs(self, upn: str = "olga@contoso.test", options: SetServerOptions | None = None) -> None:
        """The operator at the management host: the module changes AD and Entra, and Entra logs who signed in."""
        await self.module.set_server(
            "contoso.test", options or SetServerOptions(rotate_server_key=True, setup_cloud_trust=True)
        )
        for _ in range(2):  # a rotation is logged as two updates
            self.entra.events.append(
                AuditEvent(
                    f"e{len(self.entra.events)}",
                    "Update kerberos domain",
                    self.clock(),
                    "success",
                    upn,
                    ("contoso.test",),
                )
            )


async def test_an_approved_change_is_handed_to_an_operator_and_the_module_is_not_called() -> None:
    world = World()
    request_id = await world.approved_rotation()
    handed = await world.engine.executor.execute_next("worker")
    assert isinstance(handed, HandedOver)
    assert world.module.set_calls == 0
    request = handed.request
    assert request.state == RequestState.WITH_OPERATOR and request.id == request_id
    handover = handover_of(request)
    assert handover is not None and handover == handed.handover
    assert handover.operator == "U0OLGA" and handover.upn == "olga@contoso.test"
    assert handover.until == NOW + timedelta(hours=2)
    assert handover.command == (
        "Set-AzureADKerberosServer -Domain 'contoso.test' -UserPrincipalName 'olga@contoso.test' "
        "-DomainCredential $domainCred -SetupCloudTrust -TopLevelNames 'windows.net' -RotateServerKey"
    )
    assert "Run by a person" in request.plan[-1]  # approvers knew
    # the handover is signed in the history: the record is the bot's, and its history leads to with_operator
    assert request.history[-1].event == Event.HANDED_OVER
    assert world.engine.queries.card(request).with_operator


async def test_the_operators_change_is_verified_from_ad_and_entras_audit_log() -> None:
    world = World()
    await world.approved_rotation()
    handed = await world.engine.executor.execute_next("worker")
    assert isinstance(handed, HandedOver)
    operators = world.engine.operators
    assert operators is not None
    assert await operators.look() == []  # nothing ran yet: it keeps waiting
    world.clock.now += timedelta(minutes=10)
    await world.operator_runs()
    [look] = await operators.look()
    assert look.judgement.verdict == Verdict.VERIFIED
    done = look.request
    assert done.state == RequestState.SUCCEEDED
    assert done.outcome is not None and done.outcome.startswith("Verified by olga@contoso.test")
    assert "'Update kerberos domain' by olga@contoso.test" in done.outcome
    assert done.after  # a rotation leaves the world its second rotation is bound to
    assert look.new_key_version == 54325  # followed until every DC holds it, as the bot's own rotations are
    assert await operators.look() == []  # concluded once


async def test_a_change_by_someone_else_or_another_effect_needs_attention() -> None:
    world = World()
    await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    await world.operator_runs(upn="mallory@contoso.test")
    operators = world.engine.operators
    assert operators is not None
    [look] = await operators.look()
    assert look.judgement.verdict == Verdict.SOMEONE_ELSE
    assert look.request.state == RequestState.ATTENTION and "mallory@contoso.test" in (look.request.outcome or "")

    other = World()
    await other.approved_rotation()
    await other.engine.executor.execute_next("worker")
    await other.module.remove_trusted_domain_object("contoso.test")  # not what was approved
    assert other.engine.operators is not None
    [look] = await other.engine.operators.look()
    assert look.judgement.verdict == Verdict.DIFFERENT
    assert "the trusted domain object is gone" in (look.request.outcome or "")


async def test_nothing_before_the_limit_fails_it_and_done_only_makes_the_bot_look() -> None:
    world = World()
    request_id = await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    operators = world.engine.operators
    assert operators is not None
    with pytest.raises(NotAllowed):
        await operators.done(request_id, "U0BOB")  # only the named operator says it ran
    look = await operators.done(request_id, "U0OLGA")  # their word concludes nothing
    assert not look.concluded and look.judgement.verdict == Verdict.WAITING
    stored = await world.store.get(request_id)
    assert stored is not None and stored.state == RequestState.WITH_OPERATOR
    assert stored.history[-1].detail == "the operator says it ran"
    world.clock.now += timedelta(hours=2, minutes=1)
    [look] = await operators.look()
    assert look.judgement.verdict == Verdict.NOTHING and look.request.state == RequestState.FAILED


async def test_the_operator_is_never_the_requester_nor_an_approver_where_two_are_required() -> None:
    world = World(required=2, operators=frozenset({"U0ALICE", "U0BOB", "U0OLGA"}))
    await world.approved_rotation()
    handed = await world.engine.executor.execute_next("worker")
    assert isinstance(handed, HandedOver) and handed.handover.operator == "U0OLGA"

    nobody = World(required=2, operators=frozenset({"U0ALICE", "U0BOB"}))
    await nobody.approved_rotation()
    refused = await nobody.engine.executor.execute_next("worker")
    assert isinstance(refused, Execution) and not refused.succeeded
    assert "no operator can run it" in refused.outcome and nobody.module.set_calls == 0


async def test_no_other_change_of_the_domain_runs_while_one_is_with_its_operator() -> None:
    world = World()
    await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    # a second approved change of the same domain, run by the bot (its action is not handed over)
    assert world.engine.operators is not None
    world.engine.operators.policy = replace(world.engine.operators.policy, domains=frozenset())
    second = await world.engine.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="x")
    await world.engine.decisions.approve(second.id, "U0BOB")
    refused = await world.engine.executor.execute_next("worker")
    assert isinstance(refused, Execution) and not refused.succeeded
    assert "is with its operator" in refused.outcome and world.module.set_calls == 0


async def test_a_forged_handover_concludes_nothing_but_attention() -> None:
    world = World()
    request_id = await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    stored = await world.store.get(request_id)
    assert stored is not None
    entry = stored.history[-1]
    # a writer of the store names themselves the operator: the entry's MAC no longer verifies
    world.store.requests[request_id] = replace(
        stored, history=(*stored.history[:-1], replace(entry, actor="U0MALLORY"))
    )
    await world.operator_runs()
    assert world.engine.operators is not None
    [look] = await world.engine.operators.look()
    assert look.request.state == RequestState.ATTENTION and "signature" in (look.request.outcome or "")


async def test_a_change_whose_effect_cannot_be_read_is_flagged_an_hour_after_its_limit_not_left_open() -> None:
    world = World()
    request_id = await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    world.entra.error = EntraUnavailable("Microsoft Graph did not answer")
    world.clock.now += timedelta(hours=2, minutes=30)
    assert await world.engine.operators.look() == []  # within the hour: tried again at the next look
    stored = await world.store.get(request_id)
    assert stored is not None and stored.state == RequestState.WITH_OPERATOR
    world.clock.now += timedelta(hours=1)
    [look] = await world.engine.operators.look()
    assert look.request.state == RequestState.ATTENTION and "could not be read" in (look.request.outcome or "")


async def test_a_handed_over_change_is_concluded_after_the_configuration_stops_handing_over() -> None:
    world = World()
    await world.approved_rotation()
    await world.engine.executor.execute_next("worker")
    world.engine.operators.policy = OperatorPolicy()  # operator mode switched off (a restart with a new config)
    await world.operator_runs()
    [look] = await world.engine.operators.look()
    assert look.judgement.verdict == Verdict.VERIFIED
