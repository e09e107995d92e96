"""The change engine: its parts, one job each, built together over one store and one clock. A caller
holds the part it needs (``engine.decisions.approve``, ``engine.executor.execute_next``); nothing here
forwards a call."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.actions.base import ActionContext
from bot.domain.approvals import Action, ActionPolicy, GroupDirectory, ReminderPolicy
from bot.domain.errors import KerberosBotError
from bot.domain.findings import RotationPolicy
from bot.domain.integrity import Signer
from bot.domain.operators import OperatorPolicy
from bot.domain.ports import ActiveDirectory, ApprovalStore, EntraDirectory, Freezes, KerberosModule, RateLimiter
from bot.domain.windows import ChangeWindows
from bot.observability.metrics import Metrics
from bot.services.changes.authority import Authority
from bot.services.changes.decisions import Decisions
from bot.services.changes.events import Watchers
from bot.services.changes.executor import Executor
from bot.services.changes.holds import FreezeRules, Holds
from bot.services.changes.intake import Intake
from bot.services.changes.limits import ExecutionLimits, RateLimits
from bot.services.changes.operators import Operators
from bot.services.changes.queries import Queries
from bot.services.changes.rates import Rates
from bot.services.verification import ApproverVerification


@dataclass(frozen=True)
class ChangeEngine:
    intake: Intake  # taking requests
    decisions: Decisions  # approve, deny, withdraw, nudge; reminders and expiry
    executor: Executor  # claim, lease, re-validation, journal, recovery
    holds: Holds  # freezes and change windows
    queries: Queries  # what can be read without changing anything
    authority: Authority  # who may approve what
    watchers: Watchers  # who hears every change of a request
    context: ActionContext  # the world the actions see: the domains' directories, the module, the clock
    store: ApprovalStore
    metrics: Metrics  # the handlers count clicks on the same set
    # operator-executes mode: who runs a handed-over change, and the look that concludes it (always there, so
    # that a change handed over is concluded even after the configuration stopped handing any over)
    operators: Operators


def build_engine(
    *,
    store: ApprovalStore,
    module: KerberosModule,
    directories: Mapping[str, ActiveDirectory],
    groups: GroupDirectory,
    policies: Mapping[Action, ActionPolicy],
    rotation: RotationPolicy,
    clock: Callable[[], datetime],
    forest_roots: Mapping[str, str] | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:10],
    verification: ApproverVerification | None = None,
    limits: ExecutionLimits | None = None,
    signer: Signer | None = None,
    limiter: RateLimiter | None = None,
    rate_limits: RateLimits | None = None,
    entra: EntraDirectory | None = None,
    metrics: Metrics | None = None,
    freezes: Freezes | None = None,
    windows: Mapping[str, ChangeWindows] | None = None,
    approval_channels: Mapping[str, str] | None = None,
    reminders: ReminderPolicy | None = None,
    freeze_rules: FreezeRules | None = None,
    operator_policy: OperatorPolicy | None = None,
    operator_accounts: Callable[[str], Awaitable[str | None]] | None = None,
) -> ChangeEngine:
    # without a configured key (unit tests), a key of this process's own: nothing it signs verifies in
    # another process, so a deployment always passes the configured one
    signer = signer or Signer(secrets.token_bytes(32))
    metrics = metrics or Metrics.create()
    context = ActionContext(dict(directories), module, clock, rotation, dict(policies), dict(forest_roots or {}))
    authority = Authority(groups=groups, policies=policies, reminders=reminders or ReminderPolicy())
    holds = Holds(
        context=context,
        authority=authority,
        clock=clock,
        store=store,
        freezes=freezes,
        windows=windows,
        freeze_rules=freeze_rules,
    )
    rates = Rates(limiter, rate_limits or RateLimits())
    queries = Queries(
        store=store,
        context=context,
        authority=authority,
        clock=clock,
        entra=entra,
        approval_channels=approval_channels,
        holds=holds,
    )
    watchers = Watchers(queries.card)

    async def account_of(user: str) -> str | None:
        if verification is None:
            return None
        try:
            return await verification.expected_user(user)
        except KerberosBotError:
            return None  # not matched: not a candidate

    operators = Operators(
        store=store,
        context=context,
        signer=signer,
        watchers=watchers,
        clock=clock,
        policy=operator_policy or OperatorPolicy(),
        groups=groups,
        entra=entra,
        account_of=operator_accounts or account_of,
        rates=rates,
    )
    return ChangeEngine(
        intake=Intake(
            store=store,
            context=context,
            authority=authority,
            holds=holds,
            rates=rates,
            signer=signer,
            clock=clock,
            new_id=new_id,
            verification=verification,
            operators=operator_policy,
        ),
        decisions=Decisions(
            store=store, authority=authority, rates=rates, signer=signer, watchers=watchers, clock=clock
        ),
        executor=Executor(
            store=store,
            context=context,
            authority=authority,
            holds=holds,
            signer=signer,
            watchers=watchers,
            clock=clock,
            limits=limits or ExecutionLimits(),
            metrics=metrics,
            operators=operators,
        ),
        holds=holds,
        queries=queries,
        authority=authority,
        watchers=watchers,
        context=context,
        store=store,
        metrics=metrics,
        operators=operators,
    )
