"""Every action is one spec; the table, the enum, the card titles and the configuration keys agree, and
every action's execution path runs on the fakes (which change AD as the module does), so deleting
any carry-out fails here."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.actions.base import Ask
from bot.actions.registry import ACTION_SPECS
from bot.config import ACTION_KEYS, ApprovalsConfig
from bot.domain.approvals import ACTION_KINDS, Action, ActionKind, ActionPolicy, ChangeRequest, RequestState
from bot.domain.errors import UsageError
from bot.domain.top_level_names import check_top_level_names
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.limits import ExecutionLimits
from handlers.commands import discover
from handlers.views.cards import ACTION_TITLES
from handlers.views.request_form import FORM_ACTIONS
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, on_prem_state

ADMINS = "S0ADMINS"


def test_the_table_the_enum_the_titles_and_the_configuration_agree() -> None:
    assert set(ACTION_SPECS) == set(Action) == set(ACTION_KINDS) == set(ACTION_TITLES)
    assert [ACTION_SPECS[a].kind.config_key for a in Action] == list(ACTION_KEYS)
    for action, spec in ACTION_SPECS.items():
        assert spec.action == action and spec.kind is ACTION_KINDS[action]
        assert ACTION_TITLES[action] == spec.kind.title
        defaults = ApprovalsConfig()
        assert defaults.required(spec.kind.config_key) == spec.kind.default_approvals
        assert defaults.verified(spec.kind.config_key) == spec.kind.default_verified


def missing_pieces(kinds: Iterable[ActionKind]) -> list[str]:
    """What each kind lacks of what makes it whole: its spec (plan and carry-out), its [approvals.<key>]
    table, its entry on the request form (where the kind says the form offers it), its subcommand's help."""
    subcommands = {s.name: s for s in discover()}
    missing = []
    for kind in kinds:
        name = f"{kind.action.value} ({kind.command})"
        if kind.action not in ACTION_SPECS:
            missing.append(f"{name}: no ActionSpec in bot/actions (a module's SPECS)")
        if kind.config_key not in ApprovalsConfig.model_fields:
            missing.append(f"{name}: no [approvals.{kind.config_key}] table in the configuration")
        if kind.on_form and FORM_ACTIONS.get(kind.command) != kind.title:
            missing.append(f"{name}: not on the request form")
        typed = kind.typed
        if typed is not None and (typed not in subcommands or not subcommands[typed].summary):
            missing.append(f"{name}: no subcommand {typed} with its help in handlers/commands/")
    return missing


def test_every_action_kind_has_its_spec_policy_table_form_entry_and_help() -> None:
    assert missing_pieces(ACTION_KINDS.values()) == []


def test_a_kind_without_its_pieces_is_named_with_what_it_lacks() -> None:
    # a kind that exists only in the domain's table: every piece is named, so a newcomer knows where to go
    stray = replace(ACTION_KINDS[Action.SETUP], command="rekey", on_form=True)
    stray = replace(stray, action=_Stray.REKEY)  # type: ignore[arg-type]
    assert missing_pieces([stray]) == [
        "rekey (rekey): no ActionSpec in bot/actions (a module's SPECS)",
        "rekey (rekey): no [approvals.rekey] table in the configuration",
        "rekey (rekey): not on the request form",
        "rekey (rekey): no subcommand rekey with its help in handlers/commands/",
    ]


class _Stray(enum.Enum):
    REKEY = "rekey"


def test_the_dangerous_actions_need_two_verified_approvers_by_default() -> None:
    for action in (Action.ROTATE_FORCE, Action.REMOVE_TDO, Action.REMOVE_ALL):
        assert ACTION_KINDS[action].default_approvals == 2 and ACTION_KINDS[action].default_verified


def world(*, with_server: bool = True, with_tdo: bool = True, limits: ExecutionLimits | None = None):  # type: ignore[no-untyped-def]
    directories = {
        "contoso.test": FakeDirectory(
            on_prem_state(
                "contoso.test", with_server=with_server, with_tdo=with_tdo, key_updated_on=NOW - timedelta(days=40)
            )
        )
    }
    module = FakeKerberosModule.in_step(directories)
    clock = Clock()
    store = FakeApprovalStore(clock)  # the store's own clock decides leases: the test moves it
    policy = ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS}))
    service = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=FakeGroups({ADMINS: frozenset({"U0BOB"})}),
        policies={a: policy for a in Action},
        clock=clock,
        limits=limits,
    )
    return service, store, module, directories["contoso.test"], clock


async def approved(service: ChangeEngine, action: Action, **ask: Any) -> ChangeRequest:
    """Any kind, asked for and approved the one way the intake takes every kind (no branch per kind)."""
    request = await service.intake.request(action, Ask("contoso.test", "U0ALICE", "change 42", **ask))
    await service.decisions.approve(request.id, "U0BOB")
    return request


async def test_remove_tdo_removes_the_trust_in_ad_and_keeps_the_server() -> None:
    service, _, module, directory, _ = world()
    await approved(service, Action.REMOVE_TDO)
    execution = await service.executor.execute_next("w")
    assert execution is not None and execution.succeeded, execution
    assert directory.state.trusted_domain is None and directory.state.server is not None
    assert not module.cloud["contoso.test"].trust_display


async def test_setup_creates_the_server_and_the_trust_in_ad_and_entra() -> None:
    service, _, module, directory, _ = world(with_server=False, with_tdo=False)
    await approved(service, Action.SETUP, top_level_names=("usgovcloudapi.net", "windows.net"))
    execution = await service.executor.execute_next("w")
    assert execution is not None and execution.succeeded, execution
    assert directory.state.server is not None and directory.state.trusted_domain is not None
    assert directory.state.trusted_domain.top_level_names == ("usgovcloudapi.net", "windows.net")
    assert module.cloud["contoso.test"].trust_display


async def test_remove_all_removes_both_halves() -> None:
    service, _, module, directory, _ = world()
    await approved(service, Action.REMOVE_ALL)
    execution = await service.executor.execute_next("w")
    assert execution is not None and execution.succeeded, execution
    assert directory.state.server is None and directory.state.trusted_domain is None
    assert "contoso.test" not in module.cloud


@pytest.mark.parametrize("action", [Action.ROTATE, Action.ROTATE_FORCE])
async def test_rotation_changes_the_key_in_ad_and_entra(action: Action) -> None:
    service, _, module, directory, _ = world()
    request = await approved(service, action)
    execution = await service.executor.execute_next("w")
    assert execution is not None and execution.succeeded, execution
    assert directory.state.server is not None and directory.state.server.key is not None
    assert (
        directory.state.server.key.version
        == module.cloud["contoso.test"].key_version
        > (request.expected_key_version or 0)
    )


async def test_an_action_without_a_spec_fails_loudly_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    service, store, module, directory, _ = world()
    request = await approved(service, Action.REMOVE_TDO)
    monkeypatch.delitem(ACTION_SPECS, Action.REMOVE_TDO)
    execution = await service.executor.execute_next("w")
    assert execution is not None and not execution.succeeded and "unexpected error" in execution.outcome
    assert module.set_calls == 0 and directory.state.trusted_domain is not None
    assert (await store.get(request.id)).state == RequestState.FAILED


# -- after a failure: what exists, and how to clean up --------------------------------------------
async def test_a_setup_that_fails_in_the_lsa_call_says_what_was_left_in_ad_and_how_to_clean_up() -> None:
    service, store, module, _directory, _ = world(with_server=False, with_tdo=False)
    module.refuse_top_level_names = lambda names: "usgovcloudapi.net" in names
    request = await approved(service, Action.SETUP, top_level_names=("usgovcloudapi.net",))
    execution = await service.executor.execute_next("w")
    assert execution is not None and not execution.succeeded
    assert "LsaSetForestTrustInformation" in execution.outcome
    assert "krbtgt_AzureAD account" in execution.outcome and "remove-all contoso.test" in execution.outcome
    journal = (await store.get(request.id)).journal
    assert any("found after the failure: Now in contoso.test" in line for line in journal)


async def test_a_failure_before_the_module_call_reads_nothing_more() -> None:
    service, _, _module, directory, _ = world()
    await approved(service, Action.REMOVE_TDO)
    directory.state = replace(directory.state, trusted_domain=None)  # gone meanwhile
    execution = await service.executor.execute_next("w")
    assert execution is not None and not execution.succeeded
    assert "already gone" in execution.outcome and "Now in" not in execution.outcome


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (("windows.net", "core.windows.net"), "lies under `windows.net`"),
        (("windows.net", "WINDOWS.NET"), "given twice"),
        (("bad_name.net",), "not a DNS name"),
        (("localhost",), "not a DNS name"),
        ((), "at least one"),
    ],
)
def test_top_level_names_the_lsa_would_refuse_are_refused_up_front(names: tuple[str, ...], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        check_top_level_names(names)


async def test_overlapping_top_level_names_never_reach_approvers() -> None:
    service, store, _, _, _ = world(with_server=False, with_tdo=False)
    with pytest.raises(UsageError, match="must not overlap"):
        await service.intake.request_setup(
            "contoso.test", requester="U0ALICE", reason="x", top_level_names=("windows.net", "core.windows.net")
        )
    assert store.requests == {}


def test_sovereign_names_pass_normalised() -> None:
    assert check_top_level_names(("UsGovCloudApi.net.", "windows.net")) == ("usgovcloudapi.net", "windows.net")


# -- the lease: a hung change, a dead worker ------------------------------------------------------
async def test_a_change_that_hangs_is_stopped_at_its_timeout_flagged_and_its_domain_freed() -> None:
    limits = ExecutionLimits(
        lease=timedelta(seconds=0.5), renew_every=timedelta(seconds=0.1), change_timeout=timedelta(seconds=0.3)
    )
    service, store, module, _, _ = world(limits=limits)
    module.hang = asyncio.Event()  # never set: the module call does not return
    request = await approved(service, Action.REMOVE_TDO)
    execution = await service.executor.execute_next("w")
    assert execution is not None and not execution.succeeded
    flagged = await store.get(request.id)
    assert flagged is not None and flagged.state == RequestState.ATTENTION
    assert "did not finish within" in (flagged.outcome or "") and "Now in contoso.test" in (flagged.outcome or "")
    assert await store.lock_holder("contoso.test") is None


async def test_a_worker_that_died_is_flagged_once_its_lease_lapses_and_the_domain_runs_again() -> None:
    service, _store, module, _, clock = world()
    module.hang = asyncio.Event()
    first = await approved(service, Action.REMOVE_TDO)
    dying = asyncio.create_task(service.executor.execute_next("w1"))
    await module.entered.wait()
    dying.cancel()  # the process is gone: no finish, no more renewals
    with pytest.raises(asyncio.CancelledError):
        await dying
    assert await service.executor.recover() == []  # the lease is still alive
    clock.now = NOW + ExecutionLimits().lease * 2
    [flagged] = await service.executor.recover()
    assert flagged.id == first.id and "stopped inside the module call" in (flagged.outcome or "")
    module.hang = None
    await approved(service, Action.ROTATE)
    execution = await service.executor.execute_next("w2")
    assert execution is not None and execution.succeeded, execution
