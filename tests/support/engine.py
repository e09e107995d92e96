"""The one way the suites build the change engine on fakes, and the one clock they move.

``engine_on_fakes`` takes ``build_engine``'s keywords and fills what a test does not say: the in-memory
approval store, the module in step with the directories, every action approved by one member of
S0ADMINS (Bob), the default rotation policy, a clock standing at ``NOW``. A change to how the engine is
built touches this file, not every suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.domain.approvals import Action, ActionPolicy, GroupDirectory
from bot.domain.findings import RotationPolicy
from bot.domain.ports import ActiveDirectory, ApprovalStore, KerberosModule
from bot.services.changes.engine import ChangeEngine, build_engine
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule

ADMINS = "S0ADMINS"


class Clock:
    """The services' clock, moved by the test (``clock.now += timedelta(...)``)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def one_admin_policies(ttl: timedelta = timedelta(hours=1)) -> dict[Action, ActionPolicy]:
    """Every action approved by one member of S0ADMINS."""
    return {a: ActionPolicy(1, ttl, frozenset(), frozenset({ADMINS})) for a in Action}


def engine_on_fakes(
    *,
    directories: Mapping[str, ActiveDirectory],
    store: ApprovalStore | None = None,
    module: KerberosModule | None = None,
    groups: GroupDirectory | None = None,
    policies: Mapping[Action, ActionPolicy] | None = None,
    rotation: RotationPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    **engine: Any,
) -> ChangeEngine:
    if module is None:
        fakes = {name: d for name, d in directories.items() if isinstance(d, FakeDirectory)}
        module = FakeKerberosModule.in_step(fakes)
    clock = clock or Clock()
    return build_engine(
        store=store if store is not None else FakeApprovalStore(clock),
        module=module,
        directories=directories,
        groups=groups if groups is not None else FakeGroups({ADMINS: frozenset({"U0BOB"})}),
        policies=policies if policies is not None else one_admin_policies(),
        rotation=rotation or RotationPolicy(),
        clock=clock,
        **engine,
    )
