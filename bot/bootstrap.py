"""The composition root: builds the adapters, the services, the Slack app and the workers.

``build_bot`` is the one place the bot is wired: ``kerberos-bot serve``, ``socket`` and ``worker``,
the sandbox and the tests all call it (``check`` uses its builders one adapter at a time, so each
check stands on its own). With the entry points it is the only code that reads configuration.
Tests pass their own adapters through ``Overrides`` instead of patching.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.entra.app import EntraApp
from bot.adapters.entra.auth_code import MsalBrowserSignIn
from bot.adapters.entra.device_code import MsalDeviceCodeSignIn
from bot.adapters.entra.graph import GraphEntraDirectory
from bot.adapters.kerberos_module.emulator.cloud_store import CloudKerberosDomainStore
from bot.adapters.kerberos_module.emulator.module import EmulatedDomain, KerberosModuleEmulator
from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.kerberos_module.remoting.calls import ModuleCredentials, RemotingTarget, Timeouts
from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule
from bot.adapters.kerberos_module.remoting.winrm_kerberos import use_krb5_config
from bot.adapters.ldap.connection import LdapEndpoint
from bot.adapters.ldap.directory import LdapDirectory
from bot.adapters.redis.audit import RedisAuditTrail
from bot.adapters.redis.client import connect as redis_connect
from bot.adapters.redis.commands import RedisCommandQueue
from bot.adapters.redis.freezes import RedisFreezes
from bot.adapters.redis.lifecycle import RedisLeadership, RedisSchedulerMemory
from bot.adapters.redis.preferences import RedisNoticePreferences
from bot.adapters.redis.rate import RedisRateLimiter
from bot.adapters.redis.replay import RedisReplayGuard
from bot.adapters.redis.sign_in_tickets import RedisSignInTickets
from bot.adapters.redis.store import RedisApprovalStore
from bot.adapters.siem.hec import HecSink
from bot.adapters.siem.syslog import SyslogTlsSink
from bot.adapters.slack.groups import SlackProfiles, SlackUserGroups
from bot.adapters.slack.origin import SlackOrigins
from bot.adapters.slack.web import slack_web_client
from bot.config import (
    SLACK_API_DEFAULT,
    BotConfig,
    DomainConfig,
    EntraConfig,
    LifecycleConfig,
    RemotingConfig,
    VerificationConfig,
)
from bot.domain.approvals import ACTION_KINDS, Action, ActionPolicy, ApprovalStore, GroupDirectory, ReminderPolicy
from bot.domain.diagnosis import RotationPolicy
from bot.domain.errors import ConfigurationError, KerberosBotError
from bot.domain.gpo import KdcProxySetting
from bot.domain.integrity import Signer
from bot.domain.ports import (
    ActiveDirectory,
    AuditSink,
    ChatOrigins,
    CommandQueue,
    EntraDirectory,
    Freezes,
    KerberosModule,
    Leadership,
    NoticePreferences,
    RateLimiter,
    ReplayGuard,
    SchedulerMemory,
)
from bot.domain.verification import ChatProfiles, EntraGroupMembership, SignInTickets, VerificationPolicy
from bot.entrypoints.web import READY_CACHE_SECONDS, build_health_app, build_web_app
from bot.observability.metrics import Metrics
from bot.services.audit import AuditForwarder
from bot.services.changes.engine import build_engine
from bot.services.changes.limits import ExecutionLimits, RateLimits
from bot.services.container import BotServices
from bot.services.home import HomeService
from bot.services.lifecycle import DomainSchedule, LifecycleService
from bot.services.status import StatusService, StatusSettings, utc_now
from bot.services.verification import ApproverVerification
from bot.workers.audit import AuditForwarding
from bot.workers.changes import ChangeWorker
from bot.workers.commands import CommandWorker
from bot.workers.scheduler import LifecycleScheduler
from handlers.app import build_bolt_app
from handlers.boundary import IN_FLIGHT
from handlers.home import SlackHome
from handlers.notices import SlackChangeNotices, SlackLifecycleNotices, SlackRequesterMessages
from handlers.responder import ResponseUrlPoster
from handlers.router import KerberosCommand
from handlers.sign_in_page import sign_in_routes

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything the bot runs on; ``aclose`` releases connections."""

    services: BotServices
    directories: Mapping[str, ActiveDirectory]
    entra: EntraDirectory
    module: KerberosModule
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    command_queue: CommandQueue | None = None  # with Redis: hands commands' follow-up work to the workers
    replay_guard: ReplayGuard | None = None  # with Redis: a Slack request seen before is refused
    lifecycle: LifecycleService | None = None  # a domain has a channel: the scheduler's work
    leadership: Leadership | None = None  # who runs the scheduler, across replicas
    scheduling: LifecycleConfig = field(default_factory=LifecycleConfig)
    audit: AuditForwarder | None = None  # [audit] names a SIEM sink (and Redis keeps the trail)
    audit_every: timedelta = timedelta(seconds=10)

    async def readiness(self, timeout: float = 5.0) -> dict[str, str]:
        """Every dependency the bot needs to answer, checked at once: name -> why it failed."""

        async def one(name: str, check: Callable[[], Awaitable[object]]) -> tuple[str, str | None]:
            try:
                await asyncio.wait_for(check(), timeout)
                return name, None
            except TimeoutError:
                return name, f"no answer within {timeout:g} s"
            except KerberosBotError as exc:
                return name, exc.user_message
            except Exception as exc:
                return name, type(exc).__name__

        results = await asyncio.gather(*(one(n, c) for n, c in self.checks.items()))
        return {name: why for name, why in results if why is not None}

    async def aclose(self) -> None:
        await asyncio.gather(*(close() for close in self.closers), return_exceptions=True)


@dataclass(frozen=True)
class Overrides:
    """Any port the bot uses, replaced (by the tests' fakes); ``None`` builds it from configuration."""

    directories: Mapping[str, ActiveDirectory] | None = None
    entra: EntraDirectory | None = None
    module: KerberosModule | None = None
    membership: EntraGroupMembership | None = None  # Entra approver group checks (default: Graph)
    store: ApprovalStore | None = None  # default: Redis, with REDIS_URL
    sign_in_tickets: SignInTickets | None = None
    limiter: RateLimiter | None = None
    command_queue: CommandQueue | None = None
    replay_guard: ReplayGuard | None = None
    groups: GroupDirectory | None = None  # default: Slack user groups
    profiles: ChatProfiles | None = None  # default: Slack profiles
    clock: Callable[[], datetime] | None = None
    leadership: Leadership | None = None  # default: Redis
    scheduler_memory: SchedulerMemory | None = None  # default: Redis
    origins: ChatOrigins | None = None  # default: Slack (auth.test, bots.info)
    freezes: Freezes | None = None  # default: Redis
    preferences: NoticePreferences | None = None  # default: Redis


class _NoProfiles:
    """ChatProfiles when no chat client is wired: only [approvals.verification.identities] match."""

    async def email_of(self, chat_user: str) -> str | None:
        return None


def _read_text(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path else None


def entra_app(entra: EntraConfig) -> EntraApp:
    cert = entra.client_certificate
    return EntraApp(
        tenant_id=entra.tenant_id,
        client_id=entra.client_id,
        authority_host=entra.authority_host,
        client_secret=entra.client_secret.resolve("entra.client_secret") if entra.client_secret else None,
        private_key_pem=_read_text(cert.private_key_file) if cert else None,
        thumbprint=cert.thumbprint if cert else None,
        public_certificate_pem=_read_text(cert.public_certificate_file) if cert else None,
        ca_file=entra.ca_file,
        timeout=entra.timeout_seconds,
    )


def ldap_endpoint(domain: DomainConfig, *, user: str | None = None, password: str | None = None) -> LdapEndpoint:
    return LdapEndpoint(
        domain_dns_name=domain.name,
        base_dn=domain.effective_base_dn,
        ldap_urls=list(domain.ldap_urls),
        bind_user=user or domain.bind_user,
        bind_password=password or domain.bind_password.resolve(f"domains[{domain.name}].bind_password"),
        ca_file=domain.ca_file,
        tls_validate=domain.tls_validate,
        connect_timeout=domain.connect_timeout_seconds,
        operation_timeout=domain.operation_timeout_seconds,
    )


def build_emulator(config: BotConfig, directories: Mapping[str, ActiveDirectory]) -> KerberosModuleEmulator:
    emulator = config.kerberos_module.emulator
    assert emulator is not None  # validated by KerberosModuleConfig
    cloud = CloudKerberosDomainStore(entra_app(config.entra), base_url=emulator.cloud_url)
    domains: dict[str, EmulatedDomain] = {}
    for domain in config.domains:
        extra = emulator.domains.get(domain.name)
        where = f"kerberos_module.emulator.domains.{domain.name}.admin_password"
        on_prem = EmulatedOnPremModule(
            ldap_endpoint(
                domain,
                user=extra.admin_user if extra else None,
                password=extra.admin_password.resolve(where) if extra and extra.admin_password else None,
            ),
            samba_conf=extra.samba_conf if extra else None,
        )
        domains[domain.name] = EmulatedDomain(
            directory=directories[domain.name],
            on_prem=on_prem,
            is_forest_root=domain.forest_root_name == domain.name,
        )
    return KerberosModuleEmulator(domains, cloud)


def build_remoting(remoting: RemotingConfig) -> RemotingKerberosModule:
    """The real module on the Windows management host; secrets are resolved here, once."""
    where = "kerberos_module.remoting"
    if remoting.krb5_conf is not None:
        use_krb5_config(remoting.krb5_conf)  # process-global: before the first Kerberos call
    target = RemotingTarget(
        host=remoting.host,
        port=remoting.port,
        ssl=remoting.ssl,
        cert_validation=str(remoting.cert_validation)
        if not isinstance(remoting.cert_validation, bool)
        else remoting.cert_validation,
        auth=remoting.auth,
        username=remoting.username,
        password=remoting.password.resolve(f"{where}.password") if remoting.password else None,
        configuration_name=remoting.session_configuration,
        connect_timeout_seconds=remoting.connect_timeout_seconds,
        keytab=str(remoting.keytab) if remoting.keytab is not None else None,
        spn_hostname=remoting.spn_hostname,
        spn_service=remoting.spn_service,
    )
    credentials = None  # mode = "jea": the endpoint's functions hold the rights; nothing is sent
    if remoting.domain_credential is not None and remoting.cloud_credential is not None:
        credentials = ModuleCredentials(
            domain_user=remoting.domain_credential.user,
            domain_password=remoting.domain_credential.password.resolve(f"{where}.domain_credential.password"),
            cloud_user=remoting.cloud_credential.user,
            cloud_password=remoting.cloud_credential.password.resolve(f"{where}.cloud_credential.password"),
        )
    return RemotingKerberosModule(
        target,
        credentials,
        min_module_version=remoting.min_module_version,
        endpoint=remoting.endpoint,
        concurrency=remoting.concurrency,
        timeouts=Timeouts(
            read=remoting.read_timeout_seconds,
            change=remoting.change_timeout_seconds,
            check=remoting.check_timeout_seconds,
        ),
    )


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


def reminder_policy(config: BotConfig) -> ReminderPolicy:
    approvals = config.approvals
    return ReminderPolicy(
        at=tuple(p / 100 for p in approvals.remind_at_percent),
        fallback_group=approvals.escalate_to_group,
        fallback_channel=approvals.escalate_to_channel,
        nudge_every=timedelta(minutes=approvals.nudge_every_minutes),
    )


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
        client_secret=secret.resolve("approvals.verification.client_secret") if secret else None,
        authority_host=entra.authority_host,
        scopes=tuple(settings.scopes),
        ca_file=entra.ca_file,
        timeout=entra.timeout_seconds,
    )


def build_verification(
    config: BotConfig,
    tickets: SignInTickets,
    membership: EntraGroupMembership,
    profiles: ChatProfiles | None,
    closers: list[Callable[[], Awaitable[None]]],
    clock: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
) -> ApproverVerification | None:
    settings = config.approvals.verification
    if settings is None:
        return None
    policy = VerificationPolicy(
        tenant_id=config.entra.tenant_id,
        approver_group_id=settings.approver_group_id,
        identities=dict(settings.identities),
        max_auth_age=timedelta(minutes=settings.max_auth_age_minutes),
        auth_context=settings.auth_context,
        link_lifetime=timedelta(minutes=settings.link_minutes),
    )
    common: dict[str, Any] = {
        "membership": membership,
        "profiles": profiles or _NoProfiles(),
        "policy": policy,
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
            signer=integrity_signer(config),
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
    key = source.resolve("changes.integrity_key")
    if len(key) < 32:
        raise ConfigurationError("changes.integrity_key: give at least 32 characters (`openssl rand -hex 32`)")
    return Signer(key.encode("utf-8"))


def build_components(
    config: BotConfig,
    overrides: Overrides | None = None,
    *,
    redis_url: str | None = None,
    store_prefix: str = "kerberos-bot",
) -> Components:
    """The adapters and services. The changing actions are on when there is an approval store (Redis at
    ``redis_url``, or the overrides') and a group directory (``overrides.groups``; ``build_bot`` passes
    Slack's user groups); ``overrides.profiles`` match approvers to Entra users for verified approvals."""
    overrides = overrides or Overrides()
    clock = overrides.clock or utc_now
    metrics = Metrics.create()  # this process's registry, served at /metrics
    closers: list[Callable[[], Awaitable[None]]] = []
    checks: dict[str, Callable[[], Awaitable[object]]] = {}
    if overrides.directories is not None:
        directories: Mapping[str, ActiveDirectory] = overrides.directories
    else:
        ldap = {d.name: ldap_directory(d) for d in config.domains}
        closers += [d.close for d in ldap.values()]
        checks.update({f"ldap:{name}": d.ping for name, d in ldap.items()})
        directories = ldap
    graph: GraphEntraDirectory | None = None
    if overrides.entra is not None:
        entra: EntraDirectory = overrides.entra
    else:
        graph = graph_directory(config)
        closers.append(graph.close)
        entra = graph
    if overrides.module is not None:
        module: KerberosModule = overrides.module
    elif config.kerberos_module.kind == "remoting":
        assert config.kerberos_module.remoting is not None  # validated by KerberosModuleConfig
        remoting = build_remoting(config.kerberos_module.remoting)
        closers.append(remoting.close)
        module = remoting
    else:
        emulator = build_emulator(config, directories)
        closers.append(emulator.close)
        module = emulator
    policy = config.policy
    status_settings = StatusSettings(
        policy=RotationPolicy(
            key_max_age_days=policy.key_max_age_days,
            rotation_min_interval=timedelta(hours=policy.rotation_min_interval_hours),
        ),
        audit_lookback=timedelta(days=policy.audit_lookback_days),
    )
    status = StatusService(directories, module, entra, status_settings, metrics=metrics)
    store, tickets, limiter = overrides.store, overrides.sign_in_tickets, overrides.limiter
    command_queue, replay_guard = overrides.command_queue, overrides.replay_guard
    leadership, memory = overrides.leadership, overrides.scheduler_memory
    freezes, preferences = overrides.freezes, overrides.preferences
    audit: AuditForwarder | None = None
    if redis_url is not None:
        # bounded waits: a Redis host that does not answer must not hold replies or clicks for minutes
        # (the longest blocking read, a worker's XREADGROUP, waits 1 s)
        client = redis_client(redis_url)
        closers.append(client.aclose)
        checks["redis"] = client.ping
        store = store or RedisApprovalStore(client, store_prefix)
        tickets = tickets or RedisSignInTickets(client, store_prefix)
        limiter = limiter or RedisRateLimiter(client, store_prefix)
        command_queue = command_queue or RedisCommandQueue(client, store_prefix)
        replay_guard = replay_guard or RedisReplayGuard(client, store_prefix)
        leadership = leadership or RedisLeadership(client, store_prefix)
        memory = memory or RedisSchedulerMemory(client, store_prefix)
        freezes = freezes or RedisFreezes(client, store_prefix)
        audit = audit_forwarder(config, client, store_prefix)
        preferences = preferences or RedisNoticePreferences(client, store_prefix)
    changes = None
    verification = None
    if store is not None and overrides.groups is not None:
        membership = overrides.membership
        if membership is None and config.approvals.verification is not None:
            if graph is None:
                graph = graph_directory(config)
                closers.append(graph.close)
            membership = graph
        if membership is not None and tickets is not None:
            verification = build_verification(config, tickets, membership, overrides.profiles, closers, clock, metrics)
        changes = build_engine(
            signer=integrity_signer(config),
            limiter=limiter,
            rate_limits=RateLimits(config.changes.requests_per_hour, config.changes.clicks_per_minute),
            store=store,
            module=module,
            directories=directories,
            groups=overrides.groups,
            policies=action_policies(config),
            rotation=status_settings.policy,
            clock=clock,
            forest_roots={d.name: d.forest_root_name for d in config.domains},
            verification=verification,
            entra=entra,
            metrics=metrics,
            freezes=freezes,
            windows={d.name: d.windows for d in config.domains},
            approval_channels={d.name: d.approvals_channel for d in config.domains if d.approvals_channel},
            reminders=reminder_policy(config),
            limits=ExecutionLimits(
                lease=timedelta(seconds=config.changes.lease_seconds),
                renew_every=timedelta(seconds=config.changes.lease_seconds / 3),
                change_timeout=timedelta(minutes=config.changes.change_timeout_minutes),
                request_retention=timedelta(days=config.changes.request_retention_days),
                audit_retention=timedelta(days=config.changes.audit_retention_days),
            ),
        )
    lifecycle = None
    schedules = [
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
    if changes is not None and schedules and memory is not None and leadership is not None:
        lifecycle = LifecycleService(
            changes=changes,
            status=status,
            memory=memory,
            schedules=schedules,
            clock=clock,
            origin_of=overrides.origins.origin_of if overrides.origins else None,
            key_max_age_days=config.policy.key_max_age_days,
        )
    kdc_proxy = kdc_proxy_setting(config)
    services = BotServices(
        status=status,
        changes=changes,
        kdc_proxy=kdc_proxy,
        verification=verification,
        metrics=metrics,
        alert_channel=config.lifecycle.alert_channel,
        preferences=preferences,
        ticket_pattern=config.approvals.ticket_pattern,
        home=HomeService(
            changes,
            lifecycle=lifecycle,
            preferences=preferences,
            key_max_age=timedelta(days=config.policy.key_max_age_days),
        )
        if changes is not None
        else None,
    )
    return Components(
        services,
        directories,
        entra,
        module,
        closers,
        checks,
        command_queue,
        replay_guard,
        lifecycle,
        leadership,
        config.lifecycle,
        audit,
        timedelta(seconds=config.audit.forward_every_seconds),
    )


def audit_sinks(config: BotConfig) -> list[AuditSink]:
    """The SIEM sinks ``[audit]`` names."""
    sinks: list[AuditSink] = []
    if (syslog := config.audit.syslog) is not None:
        sinks.append(SyslogTlsSink(syslog.host, syslog.port, ca_file=syslog.ca_file, hostname=syslog.hostname))
    if (hec := config.audit.hec) is not None:
        token = hec.token.resolve("audit.hec.token")
        sinks.append(HecSink(hec.url, token, ca_file=hec.ca_file, index=hec.index))
    return sinks


def audit_forwarder(config: BotConfig, client: aioredis.Redis, prefix: str) -> AuditForwarder | None:
    sinks = audit_sinks(config)
    if not sinks:
        return None
    trail = RedisAuditTrail(client, prefix)
    return AuditForwarder(trail, sinks, RedisLeadership(client, prefix, job="audit"), f"audit-{uuid.uuid4().hex[:8]}")


def ldap_directory(domain: DomainConfig) -> LdapDirectory:
    return LdapDirectory(ldap_endpoint(domain), configuration_dn=domain.configuration_dn)


def redis_client(url: str) -> aioredis.Redis:
    """The bot's Redis client: its timeouts, its TLS rules (``rediss://`` validates the CA)."""
    return redis_connect(url)


def graph_directory(config: BotConfig) -> GraphEntraDirectory:
    return GraphEntraDirectory(entra_app(config.entra), graph_url=config.entra.graph_url)


def slack_client(bot_token: str, api_url: str) -> AsyncWebClient:
    """Every Web API call goes to ``api_url`` (Slack's, or the sandbox's stand-in) with the bot's token,
    retried on Slack's rate limit and server errors, its posts paced per channel."""
    return slack_web_client(bot_token, api_url)


@dataclass(frozen=True)
class SlackAccess:
    """How the bot reaches Slack and knows Slack's requests (HTTP mode signs them)."""

    bot_token: str
    signing_secret: str
    api_url: str = SLACK_API_DEFAULT


@dataclass(frozen=True)
class WorkerPlan:
    """Which workers run in this process, and how the Bolt app hands work to them."""

    changes: bool = True  # a change worker: carries out approved requests, sweeps expired ones
    command_workers: int = 0  # command workers in this process (``kerberos-bot worker``, the sandbox)
    queue_commands: bool = False  # commands' follow-up work goes to the queue (for workers here or elsewhere)
    name: str = "worker-1"  # the change worker's name in the journal (host and pid tell replicas apart)
    follow_key_every: timedelta = timedelta(minutes=5)
    follow_key_for: timedelta = timedelta(hours=8)
    command_block_ms: int = 1000
    clock: Callable[[], datetime] | None = None  # the scheduler's (tests move it); default: the system's


@dataclass
class Bot:
    """The wired bot: the Slack app, the routes beside it and the workers of this process; ``components``
    are the adapters it was built on (``None`` when the caller brought the services, as the handler tests do)."""

    services: BotServices
    client: AsyncWebClient
    bolt: AsyncApp
    routes: list[web.RouteDef]
    poster: ResponseUrlPoster
    signing_secret: str
    components: Components | None = None
    change_worker: ChangeWorker | None = None
    command_workers: list[CommandWorker] = field(default_factory=list)
    scheduler: LifecycleScheduler | None = None
    audit_forwarding: AuditForwarding | None = None

    def web_app(self) -> web.Application:
        """The Slack listener (``/slack/events``, the sign-in callback) behind the signature gate."""
        return build_web_app(
            self.bolt,
            signing_secret=self.signing_secret,
            replay_guard=self.components.replay_guard if self.components else None,
            routes=self.routes,
            metrics=self.services.metrics,
        )

    def health_app(self, cache_seconds: float = READY_CACHE_SECONDS) -> web.Application:
        """The health listener: /healthz, /readyz (this bot's checks) and /metrics (its registry)."""
        return build_health_app(self.readiness, cache_seconds=cache_seconds, metrics=self.services.metrics)

    async def readiness(self) -> dict[str, str]:
        return await self.components.readiness() if self.components else {}

    def start(self) -> None:
        if self.change_worker is not None:
            self.change_worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.audit_forwarding is not None:
            self.audit_forwarding.start()
        for worker in self.command_workers:
            worker.start()

    async def aclose(self) -> None:
        """Stops the workers (finishing the replies already started), then releases every connection."""
        if self.scheduler is not None:
            await self.scheduler.stop()  # gives the lead up: another replica takes over at once
        if self.audit_forwarding is not None:
            await self.audit_forwarding.stop()
        if self.change_worker is not None:
            await self.change_worker.stop()
        await asyncio.gather(*(worker.stop() for worker in self.command_workers))
        if not await IN_FLIGHT.drain():  # a click or command Bolt still carries on after its acknowledgement
            log.warning("closing with Slack listeners still at work")
        if self.services.changes is not None:  # what a click or a change is still telling its watchers
            await self.services.changes.watchers.drain()
        await self.poster.close()
        if self.components is not None:
            await self.components.aclose()


def build_bot(
    config: BotConfig,
    slack: SlackAccess,
    *,
    overrides: Overrides | None = None,
    redis_url: str | None = None,
    store_prefix: str = "kerberos-bot",
    workers: WorkerPlan = WorkerPlan(),
) -> Bot:
    """Everything one process runs, from the configuration (and the overrides' fakes)."""
    client = slack_client(slack.bot_token, slack.api_url)
    overrides = overrides or Overrides()
    overrides = replace(
        overrides,
        groups=overrides.groups or SlackUserGroups(client),
        profiles=overrides.profiles or SlackProfiles(client),
        origins=overrides.origins or SlackOrigins(client),
    )
    components = build_components(config, overrides, redis_url=redis_url, store_prefix=store_prefix)
    return assemble_bot(components.services, slack, workers=workers, components=components, client=client)


def assemble_bot(
    services: BotServices,
    slack: SlackAccess,
    *,
    workers: WorkerPlan = WorkerPlan(),
    components: Components | None = None,
    client: AsyncWebClient | None = None,
) -> Bot:
    """The Slack side and the workers around services already built (``build_bot``'s, or a test's)."""
    client = client or slack_client(slack.bot_token, slack.api_url)
    poster = ResponseUrlPoster()
    queue = components.command_queue if components is not None else None
    home = SlackHome(client, services.home, services.changes) if services.home and services.changes else None
    bolt = build_bolt_app(
        signing_secret=slack.signing_secret,
        client=client,
        services=services,
        poster=poster,
        command_queue=queue if workers.queue_commands else None,
        home=home,
    )
    routes = sign_in_routes(services.verification, services.changes, client)
    if services.changes is not None:  # every requester hears what becomes of their requests
        services.changes.watchers.add(SlackRequesterMessages(client, services.preferences))
        if home is not None:  # and the home pages show it
            services.changes.watchers.add(home)
    change_worker = None
    if workers.changes and services.changes is not None:
        change_worker = ChangeWorker(
            services.changes,
            SlackChangeNotices(client, services.changes, services.alert_channel),
            workers.name,
            follow_interval=workers.follow_key_every,
            follow_for=workers.follow_key_for,
        )
    scheduler = None
    lifecycle = components.lifecycle if components is not None else None
    if workers.changes and services.changes is not None and lifecycle is not None and components is not None:
        assert components.leadership is not None  # built with the lifecycle
        timing = components.scheduling
        scheduler = LifecycleScheduler(
            lifecycle,
            components.leadership,
            SlackLifecycleNotices(
                client, services.changes, services.alert_channel, on_finding=home.redraw if home else None
            ),
            workers.name,
            clock=workers.clock or utc_now,
            tick=timedelta(seconds=timing.tick_seconds),
            lease=timedelta(seconds=timing.lease_seconds),
            watch_every=timedelta(minutes=timing.watch_every_minutes),
            digest_every=timedelta(days=timing.digest_every_days) if timing.digest_every_days else None,
        )
    audit_forwarding = None
    if workers.changes and components is not None and components.audit is not None:
        audit_forwarding = AuditForwarding(components.audit, components.audit_every)
    command_workers = []
    if workers.command_workers:
        if queue is None:
            raise ConfigurationError("REDIS_URL: a command worker takes its commands from Redis")
        listener = KerberosCommand(services, poster)
        work = functools.partial(listener.work_on, client=client)
        for index in range(1, workers.command_workers + 1):
            name = workers.name if workers.command_workers == 1 else f"{workers.name}-{index}"
            command_workers.append(CommandWorker(work, queue, name, block_ms=workers.command_block_ms))
    return Bot(
        services,
        client,
        bolt,
        routes,
        poster,
        slack.signing_secret,
        components,
        change_worker,
        command_workers,
        scheduler,
        audit_forwarding,
    )


@asynccontextmanager
async def running_bot(bot: Bot) -> AsyncIterator[Bot]:
    """The bot's workers running while inside; everything stopped and released on the way out."""
    try:
        bot.start()
        yield bot
    finally:
        await bot.aclose()
