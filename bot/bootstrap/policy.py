"""The configuration turned into policy: pure functions, no adapter, no I/O (but a secret's resolution)."""

from __future__ import annotations

from datetime import timedelta

from bot.bootstrap.adapters import secret_of
from bot.config import BotConfig
from bot.domain.approvals import ACTION_KINDS, Action, ActionPolicy, ReminderPolicy
from bot.domain.errors import ConfigurationError
from bot.domain.findings import RotationPolicy
from bot.domain.gpo import KdcProxySetting
from bot.domain.integrity import Signer
from bot.domain.operators import OperatorPolicy
from bot.domain.verification import VerificationPolicy
from bot.domain.windows import ChangeWindows
from bot.services.changes.holds import FreezeRules
from bot.services.changes.limits import ExecutionLimits, RateLimits
from bot.services.lifecycle import DomainSchedule
from bot.services.status import StatusSettings


def action_policies(config: BotConfig) -> dict[Action, ActionPolicy]:
    approvals = config.approvals
    policies = {}
    for action, kind in ACTION_KINDS.items():
        key = kind.config_key
        p = approvals.policy(key)
        policies[action] = ActionPolicy(
            approvals_required=approvals.required(key),
            ttl=timedelta(minutes=p.ttl_minutes),
            requester_groups=frozenset(p.requester_groups),
            approver_groups=frozenset(
                p.approver_groups or ([] if kind.own_approvers else approvals.default_approver_groups)
            ),
            verified_approval=approvals.verified(key),
            second_with_first=p.second_with_first,
        )
    return policies


def operator_policy(config: BotConfig) -> OperatorPolicy:
    operators = config.operators
    return OperatorPolicy(
        groups=frozenset(operators.groups),
        time_limit=timedelta(minutes=operators.time_limit_minutes),
        look_every=timedelta(seconds=operators.look_every_seconds),
        domains=frozenset(d.name for d in config.domains if d.execution == "operator"),
        actions=frozenset(
            a for a, kind in ACTION_KINDS.items() if config.approvals.policy(kind.config_key).execution == "operator"
        ),
    )


def reminder_policy(config: BotConfig) -> ReminderPolicy:
    approvals = config.approvals
    escalating = frozenset(
        action
        for action, kind in ACTION_KINDS.items()
        if not kind.own_approvers
        and (kind.escalates if (chosen := approvals.policy(kind.config_key).escalate) is None else chosen)
    )
    return ReminderPolicy(
        at=tuple(p / 100 for p in approvals.remind_at_percent),
        fallback_group=approvals.escalate_to_group,
        fallback_channel=approvals.escalate_to_channel,
        nudge_every=timedelta(minutes=approvals.nudge_every_minutes),
        escalating=escalating,
    )


def status_settings(config: BotConfig) -> StatusSettings:
    policy = config.policy
    return StatusSettings(
        policy=RotationPolicy(
            key_max_age_days=policy.key_max_age_days,
            rotation_min_interval=timedelta(hours=policy.rotation_min_interval_hours),
        ),
        audit_lookback=timedelta(days=policy.audit_lookback_days),
        per_user_per_minute=policy.status_per_minute,
    )


def execution_limits(config: BotConfig) -> ExecutionLimits:
    changes = config.changes
    return ExecutionLimits(
        lease=timedelta(seconds=changes.lease_seconds),
        renew_every=timedelta(seconds=changes.lease_seconds / 3),
        change_timeout=timedelta(minutes=changes.change_timeout_minutes),
        request_retention=timedelta(days=changes.request_retention_days),
        audit_retention=timedelta(days=changes.audit_retention_days),
    )


def rate_limits(config: BotConfig) -> RateLimits:
    return RateLimits(config.changes.requests_per_hour, config.changes.clicks_per_minute)


def forest_roots(config: BotConfig) -> dict[str, str]:
    return {d.name: d.forest_root_name for d in config.domains}


def change_windows(config: BotConfig) -> dict[str, ChangeWindows]:
    return {d.name: d.windows for d in config.domains}


def approval_channels(config: BotConfig) -> dict[str, str]:
    return {d.name: d.approvals_channel for d in config.domains if d.approvals_channel}


def domain_schedules(config: BotConfig) -> list[DomainSchedule]:
    """The domains with a channel: the scheduler's cadence, watch and digest post there."""
    return [
        DomainSchedule(
            d.name,
            d.channel,
            timedelta(days=d.rotate_every_days) if d.rotate_every_days else None,
            d.rotate_twice,
            d.approvals_channel,
        )
        for d in config.domains
        if d.channel is not None
    ]


def verification_policy(config: BotConfig) -> VerificationPolicy | None:
    settings = config.approvals.verification
    if settings is None:
        return None
    return VerificationPolicy(
        tenant_id=config.entra.tenant_id,
        approver_group_id=settings.approver_group_id,
        identities=dict(settings.identities),
        max_auth_age=timedelta(minutes=settings.max_auth_age_minutes),
        auth_context=settings.auth_context,
        link_lifetime=timedelta(minutes=settings.link_minutes),
    )


def kdc_proxy_setting(config: BotConfig) -> KdcProxySetting:
    """The GPO value for the tenant's cloud (the module's endpoint setting); never entra.authority_host,
    which may be a proxy or the sandbox's stand-in."""
    remoting = config.kerberos_module.remoting
    cloud = remoting.endpoint if remoting is not None and remoting.endpoint is not None else 0
    return KdcProxySetting(config.entra.tenant_id, cloud)


def integrity_signer(config: BotConfig) -> Signer:
    """The key that signs requests, approvals and buttons: from the configuration, never from Redis."""
    source = config.changes.integrity_key
    if source is None:
        raise ConfigurationError(
            "changes.integrity_key: required with REDIS_URL (it signs every request and approval, so that nothing "
            "written to Redis by anyone else is carried out); e.g. "
            'integrity_key = { env = "KERBEROS_BOT_INTEGRITY_KEY" } with a value from `openssl rand -hex 32`'
        )
    key = secret_of(source, "changes.integrity_key")
    if len(key) < 32:
        raise ConfigurationError("changes.integrity_key: give at least 32 characters (`openssl rand -hex 32`)")
    return Signer(key.encode("utf-8"))


def freeze_rules(config: BotConfig) -> FreezeRules:
    changes = config.changes
    return FreezeRules(
        groups=frozenset(changes.freeze_groups),
        longest=timedelta(days=changes.max_freeze_days),
        verified=changes.freeze_verified,
    )
