"""The configuration file (TOML): domains, Entra, policy, approvals, the Kerberos module, changes.

Errors name the file and the key (``ConfigurationError``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from bot.config.common import SecretSource, Strict
from bot.config.remoting import RemotingConfig
from bot.domain.approvals import ACTION_KINDS, DOUBLE_ROTATIONS
from bot.domain.errors import ConfigurationError
from bot.domain.model import dns_name
from bot.domain.verification import CALLBACK_PATH
from bot.domain.windows import ChangeWindows, WindowError


def base_dn_of(dns_name: str) -> str:
    return ",".join(f"DC={part}" for part in dns_name.split("."))


def slack_channel_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[CG][A-Z0-9]{6,}", value):
        raise ValueError(f"'{value}' is not a Slack channel id such as C0123ABCD (the id, not the #name)")
    return value


class WindowConfig(Strict):
    """One change window: it opens at every time ``cron`` names and stays open ``hours``."""

    cron: str = Field(
        description="minute hour day-of-month month day-of-week, in the domain's timezone, e.g. '0 22 * * mon-thu'"
    )
    hours: float = Field(gt=0, le=168, description="how long it stays open from each start")


class DomainConfig(Strict):
    """One on-premises AD domain and how to reach its DCs."""

    name: str = Field(description="DNS name of the domain, e.g. contoso.com")
    base_dn: str | None = None
    ldap_urls: list[str] = Field(min_length=1, description="ldaps://dc1.contoso.com:636, one per DC")
    bind_user: str
    bind_password: SecretSource
    ca_file: Path | None = None
    tls_validate: bool = True
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    operation_timeout_seconds: float = Field(default=10.0, gt=0)
    forest_root: str | None = Field(default=None, description="DNS name of the forest root; empty = this domain")
    channel: str | None = Field(
        default=None,
        description="the Slack channel id (C…) where the bot files this domain's scheduled requests and posts what "
        "its watch sees; none: neither",
    )
    approvals_channel: str | None = Field(
        default=None,
        description="the Slack channel id (C…) where this domain's requests are carded and approved, whatever "
        "channel they are asked in (which gets a note with the link); none: where they are asked",
    )
    rotate_every_days: int | None = Field(
        default=None,
        ge=2,
        le=3650,
        description="file a rotate request (approved as any other) when the key is this old; none: no schedule. "
        "Microsoft: the same cadence as the AD krbtgt account",
    )
    rotate_twice: bool = Field(
        default=False,
        description="scheduled rotations are double rotations: the second is filed once the 24-hour window has "
        "passed, which retires the old key",
    )
    change_windows: list[WindowConfig] = Field(
        default_factory=list,
        description="when approved changes run here ([[domains.change_windows]] cron, hours); none: at any time. "
        "Break-glass (emergency-rotate) is not held",
    )
    timezone: str = Field(default="UTC", description="the time zone the change windows' cron expressions are read in")
    outside_window: Literal["wait", "refuse"] = Field(
        default="wait",
        description="a change approved outside every window: wait for the next opening (the card says when), or "
        "refuse it",
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        value = dns_name(value)
        if not value or " " in value or "." not in value:
            raise ValueError(f"'{value}' is not a DNS domain name such as contoso.com")
        return value

    @field_validator("tls_validate")
    @classmethod
    def _validated(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "tls_validate = false would accept any certificate, so anyone on the path could read the bind "
                "password; give the CA that signed the DCs' certificates as ca_file instead"
            )
        return value

    @field_validator("ldap_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("ldap://", "ldaps://")):
                raise ValueError(f"'{url}' must start with ldaps:// (or ldap:// for StartTLS)")
        return urls

    @field_validator("channel", "approvals_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        return slack_channel_id(value)

    @model_validator(mode="after")
    def _schedule_has_a_channel(self) -> DomainConfig:
        if self.rotate_every_days is not None and self.channel is None:
            raise ValueError("rotate_every_days needs a channel: the scheduled rotate request is posted there")
        return self

    @model_validator(mode="after")
    def _windows_readable(self) -> DomainConfig:
        try:
            self.windows  # noqa: B018 - parsed for its errors
        except WindowError as exc:
            raise ValueError(f"change_windows: {exc}") from exc
        return self

    @property
    def windows(self) -> ChangeWindows:
        """The change windows, parsed (the configuration was checked when it was read)."""
        pairs = [(w.cron, w.hours) for w in self.change_windows]
        return ChangeWindows.parse(pairs, self.timezone, self.outside_window)

    @property
    def effective_base_dn(self) -> str:
        return self.base_dn or base_dn_of(self.name)

    @property
    def forest_root_name(self) -> str:
        return (self.forest_root or self.name).lower()

    @property
    def configuration_dn(self) -> str:
        return f"CN=Configuration,{base_dn_of(self.forest_root_name)}"


class ClientCertificate(Strict):
    private_key_file: Path
    thumbprint: str
    public_certificate_file: Path | None = None


class EntraConfig(Strict):
    tenant_id: str
    client_id: str
    client_secret: SecretSource | None = None
    client_certificate: ClientCertificate | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    ca_file: Path | None = Field(default=None, description="CA bundle for the identity platform and Graph")
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("authority_host", "graph_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"'{value}' must start with https:// (tokens and the client secret travel over it)")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> EntraConfig:
        if (self.client_secret is None) == (self.client_certificate is None):
            raise ValueError("give exactly one of 'client_secret' or 'client_certificate'")
        return self


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


class EmulatorDomain(Strict):
    """Per-domain settings of the emulator: the local Samba instance it drives over LSA."""

    samba_conf: Path | None = None
    admin_user: str | None = None  # default: the domain's bind_user
    admin_password: SecretSource | None = None


class EmulatorConfig(Strict):
    cloud_url: str = Field(description="Base URL of the Entra stand-in's KerberosDomain store")
    domains: dict[str, EmulatorDomain] = Field(default_factory=dict)


class KerberosModuleConfig(Strict):
    kind: Literal["emulator", "remoting"] = "emulator"
    emulator: EmulatorConfig | None = None
    remoting: RemotingConfig | None = None

    @model_validator(mode="after")
    def _settings_for_kind(self) -> KerberosModuleConfig:
        if self.kind == "emulator" and self.emulator is None:
            raise ValueError("kind 'emulator' needs a [kerberos_module.emulator] table with cloud_url")
        if self.kind == "remoting" and self.remoting is None:
            raise ValueError(
                "kind 'remoting' needs a [kerberos_module.remoting] table with host, username, password, "
                "domain_credential and cloud_credential"
            )
        if self.kind == "emulator" and self.remoting is not None:
            raise ValueError("a [kerberos_module.remoting] table is set but kind is 'emulator' (set kind = 'remoting')")
        return self


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
    request_retention_days: int = Field(default=400, ge=1, description="finished requests older than this go")
    audit_retention_days: int = Field(default=400, ge=1, description="audit entries older than this go")


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


def _secret_sources(node: object, where: str) -> list[tuple[str, SecretSource]]:
    """Every secret reference in a configuration, with the dotted key it sits at."""
    if isinstance(node, SecretSource):
        return [(where, node)]
    found: list[tuple[str, SecretSource]] = []
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            found += _secret_sources(getattr(node, name), f"{where}.{name}".lstrip("."))
    elif isinstance(node, dict):
        for key, value in node.items():
            found += _secret_sources(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _secret_sources(value, f"{where}.{index}")
    return found


class SyslogSinkConfig(Strict):
    """Syslog over TLS (RFC 5425), RFC 5424 messages."""

    host: str
    port: int = Field(default=6514, ge=1, le=65535)
    ca_file: Path | None = Field(default=None, description="the CA of the receiver's certificate; none: the system's")
    hostname: str = Field(default="kerberos-bot", description="the HOSTNAME field of each message")


class HecSinkConfig(Strict):
    """An HTTP JSON endpoint in the shape of Splunk's HTTP Event Collector."""

    url: str = Field(description="https://splunk.example.com:8088 (the bot posts to /services/collector/event)")
    token: SecretSource
    ca_file: Path | None = None
    index: str | None = None

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must start with https:// (the audit trail names people and changes)")
        return value


class AuditConfig(Strict):
    """The audit trail out of Redis: forwarded to a SIEM, at least once, from a cursor kept in Redis."""

    forward_every_seconds: float = Field(default=10.0, ge=1, le=3600)
    syslog: SyslogSinkConfig | None = None
    hec: HecSinkConfig | None = None


class BotConfig(Strict):
    """The file named by KERBEROS_BOT_CONFIG (TOML)."""

    domains: Annotated[list[DomainConfig], Field(min_length=1)]
    entra: EntraConfig
    policy: PolicyConfig = PolicyConfig()
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    kerberos_module: KerberosModuleConfig
    changes: ChangesConfig = Field(default_factory=ChangesConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    sandbox: bool = Field(
        default=False, description="this configuration drives the sandbox: only then are inline secrets accepted"
    )

    @model_validator(mode="after")
    def _no_inline_secrets(self) -> BotConfig:
        if self.sandbox:
            return self
        inline = [where for where, source in _secret_sources(self, "") if source.value is not None]
        if inline:
            raise ValueError(
                f"{', '.join(inline)}: an inline secret ({{ value = ... }}) is for the sandbox only; name an "
                "environment variable ({ env = ... }) or a file ({ file = ... }) instead"
            )
        return self

    @model_validator(mode="after")
    def _change_timeout_covers_the_module(self) -> BotConfig:
        remoting = self.kerberos_module.remoting
        if remoting is not None and remoting.change_timeout_seconds >= self.changes.change_timeout_minutes * 60:
            raise ValueError(
                "changes.change_timeout_minutes must be longer than kerberos_module.remoting.change_timeout_seconds "
                "(a change makes the module call and reads before and after it)"
            )
        return self

    @model_validator(mode="after")
    def _unique_domains(self) -> BotConfig:
        names = [d.name for d in self.domains]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"domain(s) declared twice: {', '.join(dupes)}")
        known = set(names)
        for d in self.domains:
            if d.forest_root and d.forest_root.lower() not in known:
                raise ValueError(f"domain {d.name}: forest_root '{d.forest_root}' is not a configured domain")
        return self

    @model_validator(mode="after")
    def _verification_configured(self) -> BotConfig:
        approvals = self.approvals
        # break-glass is opt-in: it is off until its approver group is configured, so only then does it need
        # the verification table (a configuration written before it existed keeps loading)
        opted_out = {
            kind.config_key
            for kind in ACTION_KINDS.values()
            if kind.own_approvers and not approvals.policy(kind.config_key).approver_groups
        }
        needing = [key for key in ACTION_KEYS if approvals.verified(key) and key not in opted_out]
        if needing and approvals.verification is None:
            raise ValueError(
                f"verified approvals are on for {', '.join(needing)} (on by default for rotate_force, remove_tdo, "
                "setup and remove_all) but there is no [approvals.verification] table: add one with client_id "
                "(the approvers' app registration), approver_group_id (an Entra group) and public_url, or set "
                "verified_approval = false for those actions"
            )
        return self

    def domain(self, name: str) -> DomainConfig | None:
        wanted = dns_name(name)
        return next((d for d in self.domains if d.name == wanted), None)


def _explain(exc: ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{prefix}{loc}: {err['msg']}")
    return "; ".join(lines)


def load_bot_config(path: Path) -> BotConfig:
    """Read and validate the domains file; errors name the file and the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: {path} is not valid TOML: {exc}") from exc
    try:
        return BotConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG ({path}): " + _explain(exc, "")) from exc
