"""The configuration file (TOML): domains, Entra, policy, approvals, the Kerberos module, changes.

Errors name the file and the key (``ConfigurationError``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from bot.config.approvals import ACTION_KEYS, ApprovalsConfig
from bot.config.common import SecretSource, Strict, slack_channel_id
from bot.config.remoting import RemotingConfig
from bot.domain.approvals import ACTION_KINDS
from bot.domain.errors import ConfigurationError
from bot.domain.model import dns_name
from bot.domain.windows import ChangeWindows, WindowError


def base_dn_of(dns_name: str) -> str:
    return ",".join(f"DC={part}" for part in dns_name.split("."))


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
    execution: Literal["bot", "operator"] = Field(
        default="bot",
        description="operator: every approved change here is run by an operator from [operators] groups with their "
        "own MFA sign-in, and verified by the bot; bot: as each action's [approvals.<action>] execution says",
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


class RedisEntraConfig(Strict):
    """Entra ID authentication to Azure Managed Redis (instead of an access key in REDIS_URL)."""

    identity: Literal["managed_identity", "service_principal"] = Field(
        description="managed_identity: the host's (system-assigned, or the user-assigned one client_id names); "
        "service_principal: an app registration with a client secret"
    )
    client_id: str | None = Field(
        default=None, description="a user-assigned managed identity's client id, or the service principal's app id"
    )
    client_secret: SecretSource | None = Field(default=None, description="service_principal only")
    tenant_id: str | None = Field(default=None, description="service_principal: default [entra] tenant_id")
    scope: str = Field(default="https://redis.azure.com/.default", description="the token's scope")

    @model_validator(mode="after")
    def _service_principal_complete(self) -> RedisEntraConfig:
        if self.identity == "service_principal" and (self.client_id is None or self.client_secret is None):
            raise ValueError('[redis.entra] identity = "service_principal" needs client_id and client_secret')
        return self


class RedisConfig(Strict):
    entra: RedisEntraConfig | None = Field(
        default=None, description="sign in to Redis with an Entra ID token (Azure Managed Redis); absent: REDIS_URL's"
    )


class BotConfig(Strict):
    """The file named by KERBEROS_BOT_CONFIG (TOML)."""

    domains: Annotated[list[DomainConfig], Field(min_length=1)]
    entra: EntraConfig
    policy: PolicyConfig = PolicyConfig()
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    kerberos_module: KerberosModuleConfig
    changes: ChangesConfig = Field(default_factory=ChangesConfig)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
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
    def _operators_configured(self) -> BotConfig:
        by_operator = [f"[[domains]] {d.name}" for d in self.domains if d.execution == "operator"] + [
            f"[approvals.{kind.config_key}]"
            for kind in ACTION_KINDS.values()
            if self.approvals.policy(kind.config_key).execution == "operator"
        ]
        if not by_operator:
            return self
        if not self.operators.groups:
            raise ValueError(
                f'{", ".join(by_operator)} execution = "operator": name who may run the changes in [operators] groups'
            )
        if self.approvals.verification is None:
            raise ValueError(
                f'{", ".join(by_operator)} execution = "operator": the bot verifies an operator\'s change by their '
                "Entra account, mapped from Slack as approvers' are: add an [approvals.verification] table"
            )
        return self

    @model_validator(mode="after")
    def _freeze_sign_in_configured(self) -> BotConfig:
        verification = self.approvals.verification
        if self.changes.freeze_verified and (verification is None or verification.method != "auth_code"):
            raise ValueError(
                "[changes] freeze_verified needs the approvers' browser sign-in: an [approvals.verification] table "
                'with method = "auth_code"'
            )
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
