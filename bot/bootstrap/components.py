"""The adapters and services one process runs on, built from the configuration; a test or the sandbox
replaces any port by kind (``Surroundings``, ``Storage``, ``ChatPeople``) instead of patching."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.adapters.entra.graph import GraphEntraDirectory
from bot.adapters.redis.client import is_cluster
from bot.adapters.redis.clock import RedisClock
from bot.adapters.redis.keys import KEYSPACE, one_slot
from bot.bootstrap import policy
from bot.bootstrap.adapters import graph_directory, ldap_directory, redis_client, redis_credentials
from bot.bootstrap.module import build_emulator, build_remoting
from bot.bootstrap.services import Closers, bot_services, build_verification, change_engine, lifecycle_service
from bot.bootstrap.storage import Storage, memory_storage, redis_storage
from bot.config import BotConfig, LifecycleConfig
from bot.config.settings import MEMORY_URL
from bot.domain.approvals import GroupDirectory
from bot.domain.errors import ConfigurationError, KerberosBotError
from bot.domain.ports import ActiveDirectory, ChatOrigins, EntraDirectory, KerberosModule
from bot.domain.verification import ChatProfiles, EntraGroupMembership
from bot.observability.metrics import Metrics
from bot.services.container import BotServices
from bot.services.lifecycle import LifecycleService
from bot.services.status import StatusService, utc_now

Check = Callable[[], Awaitable[object]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Surroundings:
    """What the bot reads and changes: the domains' directories, Entra, the Kerberos module, and who is
    in the Entra approver group; ``None`` builds it from the configuration."""

    directories: Mapping[str, ActiveDirectory] | None = None
    entra: EntraDirectory | None = None
    module: KerberosModule | None = None
    membership: EntraGroupMembership | None = None  # default: Graph, where verified approvals are on


@dataclass(frozen=True)
class ChatPeople:
    """Who people are, as the chat knows them; without ``groups`` the changing actions are off."""

    groups: GroupDirectory | None = None  # approver and requester groups (Slack user groups)
    profiles: ChatProfiles | None = None  # their e-mail, to match an approver with an Entra user
    origins: ChatOrigins | None = None  # where the bot files its own requests from


@dataclass
class Components:
    """Everything the bot runs on; ``aclose`` releases connections."""

    services: BotServices
    directories: Mapping[str, ActiveDirectory]
    entra: EntraDirectory
    module: KerberosModule
    storage: Storage = field(default_factory=Storage)
    closers: Closers = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    lifecycle: LifecycleService | None = None  # a domain has a channel: the scheduler's work
    scheduling: LifecycleConfig = field(default_factory=LifecycleConfig)
    audit_every: timedelta = timedelta(seconds=10)
    clock: Callable[[], datetime] = utc_now  # the services' (Redis's, where the bot runs on Redis)

    async def readiness(self, timeout: float = 5.0) -> dict[str, str]:
        """Every dependency the bot needs to answer, checked at once: name -> why it failed."""

        async def one(name: str, check: Check) -> tuple[str, str | None]:
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


def build_components(
    config: BotConfig,
    *,
    surroundings: Surroundings | None = None,
    storage: Storage | None = None,
    people: ChatPeople | None = None,
    clock: Callable[[], datetime] | None = None,
    redis_url: str | None = None,
    store_prefix: str = KEYSPACE,
) -> Components:
    """The adapters and services. The changing actions are on when there is an approval store (Redis at
    ``redis_url``, or ``storage``'s) and a group directory (``people.groups``; ``build_bot`` passes
    Slack's user groups); ``people.profiles`` match approvers to Entra users for verified approvals."""
    surroundings, storage, people = surroundings or Surroundings(), storage or Storage(), people or ChatPeople()
    metrics = Metrics.create()  # this process's registry, served at /metrics
    closers: Closers = []
    checks: dict[str, Check] = {}
    directories, entra, module = _surroundings(config, surroundings, closers, checks)
    if redis_url == MEMORY_URL:
        clock = clock or utc_now
        log.warning("REDIS_URL=%s: approvals are kept in this process only and lost when it stops", MEMORY_URL)
        storage = storage.over(memory_storage(config, clock))
    elif redis_url is not None:
        cluster_rules(config, redis_url, store_prefix)
        # bounded waits: a Redis host that does not answer must not hold replies or clicks for minutes
        credentials = redis_credentials(config)
        client = redis_client(redis_url, credentials)
        closers.append(client.aclose)
        if credentials is not None:
            closers.append(credentials.aclose)
        checks["redis"] = client.ping
        storage = storage.over(redis_storage(config, client, store_prefix))
        checks.update(storage.readiness or {})
        # the signed times by Redis's clock: every replica reads one clock, whatever its host's says
        clock = clock or RedisClock(client)
    clock = clock or utc_now
    status = StatusService(
        directories, module, entra, policy.status_settings(config), metrics=metrics, limiter=storage.limiter
    )
    changes = verification = None
    if storage.store is not None and people.groups is not None:
        membership = surroundings.membership
        if membership is None and config.approvals.verification is not None:
            membership = entra if isinstance(entra, GraphEntraDirectory) else _graph(config, closers)
        if membership is not None and storage.tickets is not None:
            verification = build_verification(
                config, storage.tickets, membership, people.profiles, closers, clock, metrics
            )
        changes = change_engine(
            config,
            storage=storage,
            directories=directories,
            module=module,
            entra=entra,
            groups=people.groups,
            verification=verification,
            clock=clock,
            metrics=metrics,
        )
    lifecycle = lifecycle_service(
        config, changes=changes, status=status, storage=storage, clock=clock, origins=people.origins
    )
    services = bot_services(
        config,
        status=status,
        changes=changes,
        verification=verification,
        lifecycle=lifecycle,
        storage=storage,
        metrics=metrics,
        groups=people.groups,
    )
    return Components(
        services,
        directories,
        entra,
        module,
        storage,
        closers,
        checks,
        lifecycle,
        config.lifecycle,
        timedelta(seconds=config.audit.forward_every_seconds),
        clock,
    )


def cluster_rules(config: BotConfig, redis_url: str, store_prefix: str) -> None:
    """On a Redis Cluster every script must touch one hash slot: the bot's keys share one hash tag. And a
    decision's confirmation by replicas (WAIT) counts what one connection wrote, which a cluster client
    does not keep to one connection: refused there rather than confirming nothing."""
    if not is_cluster(redis_url):
        return
    if not one_slot(store_prefix):
        raise ConfigurationError(
            f"REDIS_URL names a Redis Cluster, but the key prefix {store_prefix!r} is not one hash tag ({{name}}): "
            "the bot's scripts would cross slots. Use the default prefix."
        )


def _graph(config: BotConfig, closers: Closers) -> GraphEntraDirectory:
    graph = graph_directory(config)
    closers.append(graph.close)
    return graph


def _surroundings(
    config: BotConfig, given: Surroundings, closers: Closers, checks: dict[str, Check]
) -> tuple[Mapping[str, ActiveDirectory], EntraDirectory, KerberosModule]:
    directories = given.directories
    if directories is None:
        ldap = {d.name: ldap_directory(d) for d in config.domains}
        closers.extend(d.close for d in ldap.values())
        checks.update({f"ldap:{name}": d.ping for name, d in ldap.items()})
        directories = ldap
    entra = given.entra if given.entra is not None else _graph(config, closers)
    module = given.module
    if module is None:
        if config.kerberos_module.kind == "remoting":
            assert config.kerberos_module.remoting is not None  # validated by KerberosModuleConfig
            remoting = build_remoting(config.kerberos_module.remoting)
            closers.append(remoting.close)
            module = remoting
        else:
            emulator = build_emulator(config, directories)
            closers.append(emulator.close)
            module = emulator
    return directories, entra, module
