"""Builders of the adapters from the configuration: the domains' directories, Entra (Graph, the
approvers' sign-in), Redis's client, Slack's Web API client, the SIEM sinks. Secrets are resolved here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis.asyncio as aioredis
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.azure.key_vault import KeyVaultSecrets
from bot.adapters.entra.app import EntraApp
from bot.adapters.entra.auth_code import MsalBrowserSignIn
from bot.adapters.entra.device_code import MsalDeviceCodeSignIn
from bot.adapters.entra.graph import GraphEntraDirectory
from bot.adapters.entra.redis_tokens import EntraRedisCredentials, managed_identity, service_principal
from bot.adapters.ldap.connection import LdapEndpoint
from bot.adapters.ldap.directory import LdapDirectory
from bot.adapters.redis.client import connect as redis_connect
from bot.adapters.siem.hec import HecSink
from bot.adapters.siem.syslog import SyslogTlsSink
from bot.adapters.slack.web import slack_web_client
from bot.config import BotConfig, DomainConfig, EntraConfig, SecretSource, VerificationConfig
from bot.domain.ports import AuditSink


def _read_text(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path else None


def entra_app(entra: EntraConfig) -> EntraApp:
    cert = entra.client_certificate
    source = entra.client_secret
    return EntraApp(
        tenant_id=entra.tenant_id,
        client_id=entra.client_id,
        authority_host=entra.authority_host,
        client_secret=secret_of(source, "entra.client_secret") if source else None,
        # a file or a Key Vault secret may be rotated while the bot runs: read again when Entra refuses it
        client_secret_again=(
            (lambda: secret_of(source, "entra.client_secret")) if source and source.may_change else None
        ),
        private_key_pem=_read_text(cert.private_key_file) if cert else None,
        thumbprint=cert.thumbprint if cert else None,
        public_certificate_pem=_read_text(cert.public_certificate_file) if cert else None,
        ca_file=entra.ca_file,
        timeout=entra.timeout_seconds,
    )


def ldap_endpoint(domain: DomainConfig, *, user: str | None = None, password: str | None = None) -> LdapEndpoint:
    where = f"domains[{domain.name}].bind_password"
    return LdapEndpoint(
        domain_dns_name=domain.name,
        base_dn=domain.effective_base_dn,
        ldap_urls=list(domain.ldap_urls),
        bind_user=user or domain.bind_user,
        bind_password=password or secret_of(domain.bind_password, where),
        # a file or a Key Vault secret may be rotated while the bot runs: read again when the DCs refuse it
        bind_password_again=(
            (lambda: secret_of(domain.bind_password, where))
            if password is None and domain.bind_password.may_change
            else None
        ),
        ca_file=domain.ca_file,
        tls_validate=domain.tls_validate,
        connect_timeout=domain.connect_timeout_seconds,
        operation_timeout=domain.operation_timeout_seconds,
    )


@cache
def _key_vault() -> KeyVaultSecrets:
    """One Key Vault reader per process (one credential, a client per vault), made when a reference is read."""
    return KeyVaultSecrets()


def secret_of(source: SecretSource, where: str) -> str:
    """A secret the configuration names: from the environment, a file, or Azure Key Vault."""
    return source.resolve(where, key_vault=_key_vault().read)


def ldap_directory(domain: DomainConfig) -> LdapDirectory:
    return LdapDirectory(ldap_endpoint(domain), configuration_dn=domain.configuration_dn)


def graph_directory(config: BotConfig) -> GraphEntraDirectory:
    return GraphEntraDirectory(entra_app(config.entra), graph_url=config.entra.graph_url)


def approver_sign_in(entra: EntraConfig, settings: VerificationConfig) -> MsalDeviceCodeSignIn:
    """The approvers' device-code sign-in, with the public client of ``[approvals.verification]``."""
    return MsalDeviceCodeSignIn(
        tenant_id=entra.tenant_id,
        client_id=settings.client_id,
        authority_host=entra.authority_host,
        scopes=tuple(settings.scopes),
        ca_file=entra.ca_file,
        timeout=entra.timeout_seconds,
    )


def approver_browser_sign_in(entra: EntraConfig, settings: VerificationConfig) -> MsalBrowserSignIn:
    """The approvers' browser sign-in (authorization code flow with PKCE) of ``[approvals.verification]``."""
    secret = settings.client_secret
    return MsalBrowserSignIn(
        tenant_id=entra.tenant_id,
        client_id=settings.client_id,
        client_secret=secret_of(secret, "approvals.verification.client_secret") if secret else None,
        authority_host=entra.authority_host,
        scopes=tuple(settings.scopes),
        ca_file=entra.ca_file,
        timeout=entra.timeout_seconds,
    )


def redis_client(url: str, credentials: EntraRedisCredentials | None = None) -> aioredis.Redis:
    """The bot's Redis client: its timeouts, its TLS rules (``rediss://`` validates the CA), and where
    ``[redis.entra]`` says so (``redis_credentials``), Entra ID tokens instead of a password."""
    return redis_connect(url, credential_provider=credentials)


def redis_credentials(config: BotConfig) -> EntraRedisCredentials | None:
    """Entra ID tokens for Azure Managed Redis, where ``[redis.entra]`` asks for them (the caller closes them)."""
    entra = config.redis.entra
    if entra is None:
        return None
    if entra.identity == "managed_identity":
        return managed_identity(client_id=entra.client_id, scope=entra.scope, ca_file=config.entra.ca_file)
    assert entra.client_id is not None and entra.client_secret is not None  # the schema checks it
    app = EntraApp(
        tenant_id=entra.tenant_id or config.entra.tenant_id,
        client_id=entra.client_id,
        authority_host=config.entra.authority_host,
        client_secret=secret_of(entra.client_secret, "redis.entra.client_secret"),
        ca_file=config.entra.ca_file,
        timeout=config.entra.timeout_seconds,
    )
    return service_principal(app, entra.scope)


def slack_client(bot_token: str, api_url: str) -> AsyncWebClient:
    """Every Web API call goes to ``api_url`` (Slack's, or the sandbox's stand-in) with the bot's token,
    retried on Slack's rate limit and server errors, its posts paced per channel."""
    return slack_web_client(bot_token, api_url)


def audit_sinks(config: BotConfig) -> list[AuditSink]:
    """The SIEM sinks ``[audit]`` names."""
    sinks: list[AuditSink] = []
    if (syslog := config.audit.syslog) is not None:
        sinks.append(SyslogTlsSink(syslog.host, syslog.port, ca_file=syslog.ca_file, hostname=syslog.hostname))
    if (hec := config.audit.hec) is not None:
        token = secret_of(hec.token, "audit.hec.token")
        sinks.append(HecSink(hec.url, token, ca_file=hec.ca_file, index=hec.index))
    return sinks
