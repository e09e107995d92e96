"""The configuration's approval tables: one per action kind, generated from the kinds (``[approvals.<key>]``:
how many approve, whether each needs a verified sign-in, for how long), the defaults every table falls
back to, and the approvers' sign-in (``[approvals.verification]``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, create_model, field_validator, model_validator

from bot.config.common import SecretSource, Strict, slack_channel_id
from bot.domain.approvals import ACTION_KINDS, DOUBLE_ROTATIONS
from bot.domain.verification import CALLBACK_PATH


class ActionPolicyConfig(Strict):
    """Who may request and approve one action, how many must approve, how long a request lives."""

    approvals_required: int | None = Field(
        default=None, ge=1, le=10, description="unset: 2 for rotate_force, remove_tdo, setup and remove_all, else 1"
    )
    ttl_minutes: int = Field(default=240, ge=1)
    requester_groups: list[str] = Field(default_factory=list, description="Slack user group ids; empty: anyone")
    approver_groups: list[str] = Field(default_factory=list, description="Slack user group ids that may approve")
    verified_approval: bool | None = Field(
        default=None,
        description="an approval counts only after a fresh Entra sign-in with MFA; "
        "unset: on for rotate_force, remove_tdo, setup and remove_all",
    )
    escalate: bool | None = Field(
        default=None,
        description="after the last reminder, members of [approvals] escalate_to_group may approve it too; "
        "unset: only rotate escalates (never emergency_rotate)",
    )
    execution: Literal["bot", "operator"] = Field(
        default="bot",
        description="bot: the bot runs it through the Kerberos module; operator: once approved, an operator from "
        "[operators] groups runs the exact command with their own MFA sign-in and the bot verifies it from AD and "
        "Entra's audit log (a domain's execution = \"operator\" does so for all its changes)",
    )
    second_with_first: bool = Field(
        default=False,
        description="rotations only (rotate, rotate_force, emergency_rotate): the approvals of a double rotation "
        "approve its second rotation too, which the bot then files approved (the card says so)",
    )


# The dangerous actions: two approvers, each with a verified Entra sign-in, unless configured otherwise.
# Defaults are per key, so a table that sets only one key (say ttl_minutes) keeps the others.
VERIFIED_BY_DEFAULT = frozenset(k.config_key for k in ACTION_KINDS.values() if k.default_verified)

DEFAULT_APPROVALS = {k.config_key: k.default_approvals for k in ACTION_KINDS.values()}

ACTION_KEYS = tuple(k.config_key for k in ACTION_KINDS.values())

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class VerificationConfig(Strict):
    """[approvals.verification]: how approvers prove their Entra identity, one sign-in per approval."""

    method: Literal["auth_code", "device_code"] = Field(
        default="auth_code",
        description="auth_code: a browser sign-in (authorization code flow with PKCE) that comes back to "
        "public_url; device_code: the device code flow, for Socket Mode, where there is no public listener "
        "(phishable, and blocked by many tenants' Conditional Access)",
    )
    client_id: str = Field(description="application id of the approvers' app registration")
    client_secret: SecretSource | None = Field(
        default=None, description="auth_code only: the approvers' app is a confidential (web) client"
    )
    approver_group_id: str = Field(description="object id of the Entra group whose members may approve")
    public_url: str | None = Field(
        default=None,
        description="auth_code: the bot's public HTTPS base URL; the redirect URI is <public_url>/auth/callback",
    )
    max_auth_age_minutes: int = Field(
        default=5, ge=1, le=60, description="a sign-in whose auth_time is older does not count"
    )
    auth_context: str | None = Field(
        default=None,
        pattern=r"^c([1-9]|[1-9][0-9])$",
        description="a Conditional Access authentication context (c1..c99) every approval sign-in must satisfy",
    )
    link_minutes: int = Field(default=10, ge=1, le=60, description="how long a sign-in link waits for its sign-in")
    scopes: list[str] = Field(default_factory=lambda: ["User.Read"])
    identities: dict[str, str] = Field(
        default_factory=dict, description="Slack user id -> Entra UPN; otherwise the Slack profile e-mail is used"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_reuse_window(cls, data: Any) -> Any:
        if isinstance(data, dict) and "freshness_minutes" in data:
            raise ValueError(
                "freshness_minutes is gone: a sign-in no longer counts for later approvals, every approval needs "
                "a sign-in of its own; remove it (max_auth_age_minutes bounds how old that sign-in may be)"
            )
        return data

    @model_validator(mode="after")
    def _method_settings(self) -> VerificationConfig:
        if self.method == "device_code":
            if self.client_secret is not None:
                raise ValueError("client_secret: the device code flow needs a public client; remove client_secret")
            return self
        if not self.public_url:
            raise ValueError(
                'method = "auth_code" needs public_url, the bot\'s public HTTPS address (its redirect URI is '
                '<public_url>/auth/callback); in Socket Mode, without a public listener, set method = "device_code"'
            )
        url = self.public_url
        host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] if "://" in url else ""
        if not (url.startswith("https://") or (url.startswith("http://") and host in _LOOPBACK_HOSTS)):
            raise ValueError(
                f"public_url '{url}' must start with https:// (authorization codes travel over it); Entra allows "
                "http:// only for loopback addresses"
            )
        if "?" in url or "#" in url:
            raise ValueError(f"public_url '{url}': no query or fragment, only the base address")
        return self

    @property
    def redirect_uri(self) -> str:
        return f"{(self.public_url or '').rstrip('/')}{CALLBACK_PATH}"

    @field_validator("identities")
    @classmethod
    def _upns(cls, identities: dict[str, str]) -> dict[str, str]:
        for user, upn in identities.items():
            if "@" not in upn:
                raise ValueError(f"identities.{user}: '{upn}' is not a user principal name such as alice@contoso.com")
        by_upn: dict[str, str] = {}
        for user, upn in identities.items():
            if upn.lower() in by_upn:
                raise ValueError(
                    f"identities: {by_upn[upn.lower()]} and {user} both map to {upn}; one person would count as two "
                    "approvers (map each Slack account to its own Entra user, and a person's second Slack account "
                    "to nobody)"
                )
            by_upn[upn.lower()] = user
        return identities


class ApprovalSettings(Strict):
    """[approvals]: what holds for every action; each action's own table, ``[approvals.<config_key>]``, is
    added from the action kinds (``ApprovalsConfig`` below), so a new kind needs no line here. The
    defaults follow the risk: a forced rotation or a removal needs two people, each verified by an Entra
    sign-in with MFA."""

    default_approver_groups: list[str] = Field(default_factory=list)
    verification: VerificationConfig | None = None
    remind_at_percent: list[int] = Field(
        default_factory=lambda: [50, 90],
        description="approvers are reminded in the card's thread at these points of each request's time to live; "
        "[]: never",
    )
    escalate_to_group: str | None = Field(
        default=None,
        description="a Slack user group id (S…): after the last reminder it is pinged and its members may approve too "
        "(not break-glass, which keeps its own approvers)",
    )
    escalate_to_channel: str | None = Field(
        default=None, description="a channel id (C…): after the last reminder, a note with the card's link goes there"
    )
    ticket_pattern: str | None = Field(
        default=None,
        description="a regular expression the request form's ticket must match whole; none: CHG-1234 or INC0012345 "
        "style numbers",
    )
    nudge_every_minutes: int = Field(
        default=60, ge=1, description="the requester may nudge the approvers (/kerberos nudge) once per this"
    )

    @field_validator("remind_at_percent")
    @classmethod
    def _points(cls, value: list[int]) -> list[int]:
        if any(not 0 < p < 100 for p in value) or value != sorted(set(value)):
            raise ValueError("give points between 1 and 99 percent, each once, in order (e.g. [50, 90])")
        return value

    @field_validator("ticket_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"'{value}' is not a regular expression: {exc}") from exc
        return value

    @field_validator("escalate_to_channel")
    @classmethod
    def _escalation_channel(cls, value: str | None) -> str | None:
        return slack_channel_id(value)

    @field_validator("escalate_to_group")
    @classmethod
    def _escalation_group(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"S[A-Z0-9]{6,}", value):
            raise ValueError(f"'{value}' is not a Slack user group id such as S0123ABCD")
        return value

    def policy(self, action_key: str) -> ActionPolicyConfig:
        """The table ``[approvals.<action_key>]``."""
        return cast(ActionPolicyConfig, getattr(self, action_key))

    @model_validator(mode="after")
    def _escalation_after_a_reminder(self) -> ApprovalSettings:
        if (self.escalate_to_group or self.escalate_to_channel) and not self.remind_at_percent:
            raise ValueError("escalation follows the last reminder: give remind_at_percent too")
        return self

    @model_validator(mode="after")
    def _second_with_first_on_rotations_only(self) -> ApprovalSettings:
        rotations = {ACTION_KINDS[a].config_key for a in DOUBLE_ROTATIONS}
        for key in ACTION_KEYS:
            if self.policy(key).second_with_first and key not in rotations:
                raise ValueError(
                    f"[approvals.{key}] second_with_first: only a rotation has a second rotation "
                    f"({', '.join(sorted(rotations))})"
                )
        return self

    def required(self, action_key: str) -> int:
        setting: int | None = self.policy(action_key).approvals_required
        return setting if setting is not None else DEFAULT_APPROVALS[action_key]

    def verified(self, action_key: str) -> bool:
        setting: bool | None = self.policy(action_key).verified_approval
        return setting if setting is not None else action_key in VERIFIED_BY_DEFAULT


if TYPE_CHECKING:  # the tables are read through policy(); to mypy the class is its settings
    ApprovalsConfig = ApprovalSettings
else:
    ApprovalsConfig = create_model(
        "ApprovalsConfig",
        __base__=ApprovalSettings,
        __module__=__name__,
        **{
            kind.config_key: (
                ActionPolicyConfig,
                Field(default_factory=ActionPolicyConfig, description=kind.config_note or None),
            )
            for kind in ACTION_KINDS.values()
        },
    )
