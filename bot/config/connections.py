"""What the bot connects to besides the DCs: [entra] (the app registration), [kerberos_module] (the
emulator or Microsoft's module over PowerShell Remoting), [audit] (the SIEM) and [redis] (Entra sign-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.common import SecretSource, Strict
from bot.config.remoting import RemotingConfig


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
