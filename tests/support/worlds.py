"""One domain on fakes with the services around it, for the handler suites: the change service (on the
in-memory approval store) and the status service over the same directory and module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.approvals import Action, ActionPolicy
from bot.domain.model import OnPremState
from bot.domain.windows import ChangeWindows
from bot.services.changes.engine import ChangeEngine
from bot.services.status import StatusService
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeFreezes, FakeGroups, FakeKerberosModule

ADMINS = "S0ADMINS"


@dataclass
class OneDomain:
    changes: ChangeEngine
    status: StatusService
    module: FakeKerberosModule
    directories: dict[str, FakeDirectory]
    store: FakeApprovalStore


def one_domain(
    state: OnPremState,
    *,
    groups: Mapping[str, frozenset[str]] | None = None,
    policies: Mapping[Action, ActionPolicy] | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    freezes: FakeFreezes | None = None,
    windows: ChangeWindows | None = None,
    approvals_channel: str | None = None,
) -> OneDomain:
    """Every action approved by one member of S0ADMINS (Bob) unless ``policies`` says otherwise."""
    directories = {state.domain_dns_name: FakeDirectory(state)}
    module = FakeKerberosModule.in_step(directories)
    store = FakeApprovalStore()
    changes = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=FakeGroups(dict(groups or {ADMINS: frozenset({"U0BOB"})})),
        policies=dict(
            policies or {a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action}
        ),
        clock=clock,
        freezes=freezes,
        windows={state.domain_dns_name: windows} if windows else None,
        approval_channels={state.domain_dns_name: approvals_channel} if approvals_channel else None,
    )
    status = StatusService(directories, module, FakeEntra(), clock=clock)
    return OneDomain(changes, status, module, directories, store)
