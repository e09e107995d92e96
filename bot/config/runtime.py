"""How the bot behaves: [policy] (key age, the 24-hour rule, who reads), [changes] (time limits, signing,
rates, freezes, replicas), [operators] (who runs changes by hand) and [lifecycle] (the scheduler)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from bot.config.common import SecretSource, Strict, slack_channel_id


class PolicyConfig(Strict):
    key_max_age_days: int = Field(default=180, gt=0)
    rotation_min_interval_hours: float = Field(
        default=24.0,
        ge=24,
        description="the module itself refuses a rotation within 24 hours without -Force: a shorter interval "
        "would let approvers approve rotations that then fail",
    )
    audit_lookback_days: int = Field(default=30, gt=0)
    status_per_minute: int = Field(
        default=20,
        ge=1,
        description="status reads a user may ask for per minute (each one calls the module on the management host)",
    )
    reader_groups: list[str] = Field(
        default_factory=list,
        description="Slack user groups whose members (and every approver) may read status, history and requests; "
        "empty: anyone in a channel the bot is in",
    )


class ChangesConfig(Strict):
    """How long a change may run, and how long finished requests and the audit trail are kept in Redis."""

    change_timeout_minutes: float = Field(
        default=20.0,
        gt=0,
        le=120,
        description="a change still running after this is stopped and flagged 'needs attention' (its outcome is "
        "unknown); longer than every module call it makes",
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=3,
        le=50,
        description="a running change's lease, renewed every third of it; a dead worker's request is flagged "
        "'needs attention' within this plus a 5-second sweep",
    )
    integrity_key: SecretSource | None = Field(
        default=None,
        description="the HMAC key (at least 32 characters, e.g. `openssl rand -hex 32`) that signs every request, "
        "approval and button; it must never be stored in Redis. Required when changes are on",
    )
    requests_per_hour: int = Field(default=20, ge=1, description="new change requests a user may make per hour")
    clicks_per_minute: int = Field(default=30, ge=1, description="Approve/Deny clicks a user may make per minute")
    max_freeze_days: int = Field(
        default=14, ge=1, le=90, description="the longest a change freeze may last (/kerberos freeze <domain> <until>)"
    )
    freeze_groups: list[str] = Field(
        default_factory=list,
        description="Slack user groups whose members may freeze a domain and end its freeze; empty: every "
        "approver group",
    )
    freeze_verified: bool = Field(
        default=False,
        description="a freeze and its early end need a fresh Entra sign-in with MFA, confirmed on the bot's page, "
        'as verified approvals do (needs [approvals.verification] with method = "auth_code")',
    )
    confirm_replicas: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Redis replicas that must hold a request or a decision before anyone is told of it (WAIT); 0: "
        "none asked (a single Redis). With a primary that fails over, 1",
    )
    confirm_timeout_ms: int = Field(
        default=500,
        ge=10,
        le=2500,
        description="how long a click's answer waits for those replicas; past it the answer says the decision is "
        "recorded but not yet safe, and /readyz reports durability degraded",
    )
    request_retention_days: int = Field(default=400, ge=1, description="finished requests older than this go")
    audit_retention_days: int = Field(default=400, ge=1, description="audit entries older than this go")


class OperatorsConfig(Strict):
    """[operators]: who runs approved changes where execution = "operator" (their own MFA sign-in on the
    management host), and how long they have before the bot reports that nothing happened."""

    groups: list[str] = Field(
        default_factory=list,
        description="Slack user group ids whose members may be named to run an approved change; never its "
        "requester, nor one of its approvers where it needs two or more",
    )
    time_limit_minutes: int = Field(
        default=120, ge=10, le=1440, description="how long the named operator has to run the change"
    )
    look_every_seconds: float = Field(
        default=60.0, ge=5, le=600, description="how often the bot reads AD and Entra's audit log for the effect"
    )

    @field_validator("groups")
    @classmethod
    def _group_ids(cls, groups: list[str]) -> list[str]:
        for group in groups:
            if not re.fullmatch(r"S[A-Z0-9]{6,}", group):
                raise ValueError(f"'{group}' is not a Slack user group id such as S0123ABCD")
        return groups


class LifecycleConfig(Strict):
    """[lifecycle]: the scheduler in the change workers (one leader across replicas, over Redis)."""

    tick_seconds: float = Field(default=60.0, ge=1, le=3600, description="how often the leader files what is due")
    lease_seconds: float = Field(
        default=15.0, ge=1, le=300, description="the leader's lease; another worker takes over this long after it dies"
    )
    alert_channel: str | None = Field(
        default=None, description="the channel id (C…) told of every emergency rotation: requested, carried out"
    )
    watch_every_minutes: float = Field(
        default=15.0, gt=0, le=1440, description="how often every domain's status is read for new findings"
    )
    digest_every_days: float = Field(
        default=7.0,
        ge=0,
        le=92,
        description="a digest per channel this often (key ages, rotations, refusals, drift); 0: none",
    )

    @field_validator("alert_channel")
    @classmethod
    def _alert_channel_id(cls, value: str | None) -> str | None:
        return slack_channel_id(value)
