"""The services over the adapters: status, the change engine (when there is an approval store and a group
directory), the approvers' verification, the lifecycle and the home pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.adapters.entra.auth_code import MsalBrowserSignIn
from bot.adapters.entra.device_code import MsalDeviceCodeSignIn
from bot.bootstrap import policy
from bot.bootstrap.adapters import approver_browser_sign_in, approver_sign_in
from bot.bootstrap.storage import Storage
from bot.config import BotConfig
from bot.domain.approvals import GroupDirectory
from bot.domain.ports import ActiveDirectory, ChatOrigins, EntraDirectory, KerberosModule
from bot.domain.verification import ChatProfiles, EntraGroupMembership, SignInTickets
from bot.observability.metrics import Metrics
from bot.services.changes.engine import ChangeEngine, build_engine
from bot.services.container import BotServices
from bot.services.home import HomeService
from bot.services.lifecycle import LifecycleService
from bot.services.readers import Readers
from bot.services.status import StatusService, utc_now
from bot.services.verification import ApproverVerification

Closers = list[Callable[[], Awaitable[None]]]


class _NoProfiles:
    """ChatProfiles when no chat client is wired: only [approvals.verification.identities] match."""

    async def email_of(self, chat_user: str) -> str | None:
        return None


def build_verification(
    config: BotConfig,
    tickets: SignInTickets,
    membership: EntraGroupMembership,
    profiles: ChatProfiles | None,
    closers: Closers,
    clock: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
) -> ApproverVerification | None:
    settings, verification_policy = config.approvals.verification, policy.verification_policy(config)
    if settings is None or verification_policy is None:
        return None
    common: dict[str, Any] = {
        "membership": membership,
        "profiles": profiles or _NoProfiles(),
        "policy": verification_policy,
        "metrics": metrics,
    }
    adapter: MsalBrowserSignIn | MsalDeviceCodeSignIn
    if settings.method == "auth_code":
        adapter = approver_browser_sign_in(config.entra, settings)
        verification = ApproverVerification(
            **common,
            clock=clock,
            browser=adapter,
            tickets=tickets,
            signer=policy.integrity_signer(config),
            redirect_uri=settings.redirect_uri,
        )
    else:
        adapter = approver_sign_in(config.entra, settings)
        verification = ApproverVerification(**common, clock=clock, device_code=adapter)

    async def close() -> None:
        await verification.close()
        adapter.close()

    closers.append(close)
    return verification


def change_engine(
    config: BotConfig,
    *,
    storage: Storage,
    directories: Mapping[str, ActiveDirectory],
    module: KerberosModule,
    entra: EntraDirectory,
    groups: GroupDirectory,
    verification: ApproverVerification | None,
    clock: Callable[[], datetime],
    metrics: Metrics,
) -> ChangeEngine:
    assert storage.store is not None  # the caller checked: no store, no engine
    return build_engine(
        signer=policy.integrity_signer(config),
        limiter=storage.limiter,
        rate_limits=policy.rate_limits(config),
        store=storage.store,
        module=module,
        directories=directories,
        groups=groups,
        policies=policy.action_policies(config),
        rotation=policy.status_settings(config).policy,
        clock=clock,
        forest_roots=policy.forest_roots(config),
        verification=verification,
        entra=entra,
        metrics=metrics,
        freezes=storage.freezes,
        windows=policy.change_windows(config),
        approval_channels=policy.approval_channels(config),
        reminders=policy.reminder_policy(config),
        limits=policy.execution_limits(config),
        freeze_rules=policy.freeze_rules(config),
        operator_policy=policy.operator_policy(config),
    )


def lifecycle_service(
    config: BotConfig,
    *,
    changes: ChangeEngine | None,
    status: StatusService,
    storage: Storage,
    clock: Callable[[], datetime],
    origins: ChatOrigins | None,
) -> LifecycleService | None:
    """The scheduler's work, where a domain has a channel and the shared store keeps its memory."""
    schedules = policy.domain_schedules(config)
    if changes is None or not schedules or storage.memory is None or storage.leadership is None:
        return None
    return LifecycleService(
        changes=changes,
        status=status,
        memory=storage.memory,
        schedules=schedules,
        clock=clock,
        origin_of=origins.origin_of if origins else None,
        key_max_age_days=config.policy.key_max_age_days,
    )


def bot_services(
    config: BotConfig,
    *,
    status: StatusService,
    changes: ChangeEngine | None,
    verification: ApproverVerification | None,
    lifecycle: LifecycleService | None,
    storage: Storage,
    metrics: Metrics,
    groups: GroupDirectory | None = None,
) -> BotServices:
    approvers = changes.authority.every_approver_group if changes is not None else frozenset()
    readers = Readers(frozenset(config.policy.reader_groups), directory=groups, approver_groups=approvers)
    home = None
    if changes is not None:
        key_max_age = timedelta(days=config.policy.key_max_age_days)
        home = HomeService(
            changes,
            lifecycle=lifecycle,
            preferences=storage.preferences,
            key_max_age=key_max_age,
            readers=readers,
        )
    return BotServices(
        status=status,
        changes=changes,
        kdc_proxy=policy.kdc_proxy_setting(config),
        verification=verification,
        metrics=metrics,
        alert_channel=config.lifecycle.alert_channel,
        preferences=storage.preferences,
        ticket_pattern=config.approvals.ticket_pattern,
        home=home,
        readers=readers,
    )
