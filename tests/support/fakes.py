"""In-memory fakes of the ports: same Protocols as the adapters, no I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.adapters.memory.ports import (
    MemoryCommandQueue,
    MemoryFreezes,
    MemoryLeadership,
    MemoryNoticePreferences,
    MemoryRateLimiter,
    MemorySchedulerMemory,
)
from bot.domain.errors import KerberosBotError, KerberosModuleError, UnknownDomainError
from bot.domain.model import (
    TRUST_DISPLAY_TYPE,
    AuditEvent,
    CloudKerberosDomain,
    KerberosServerReport,
    KeyMetadata,
    OnPremKerberosServer,
    OnPremState,
    TenantInfo,
    TrustedDomainObject,
)
from bot.domain.ports import DeferredCommand, SetServerOptions, each_server

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def on_prem_state(
    domain: str = "contoso.test",
    *,
    server_id: int = 25614,
    key_version: int = 53325,
    key_updated_on: datetime = NOW - timedelta(days=40),
    with_server: bool = True,
    with_tdo: bool = True,
    tlns: tuple[str, ...] = ("windows.net",),
) -> OnPremState:
    base = ",".join(f"DC={p}" for p in domain.split("."))
    server = (
        OnPremKerberosServer(
            computer_dn=f"CN=AzureADKerberos,OU=Domain Controllers,{base}",
            krbtgt_dn=f"CN=krbtgt_AzureAD,CN=Users,{base}",
            server_id=server_id,
            display_name=f"krbtgt_{server_id}",
            key=KeyMetadata(key_version, key_updated_on, f"dc1.{domain}", kvno=3),
        )
        if with_server
        else None
    )
    tdo = (
        TrustedDomainObject(
            dn=f"CN=KERBEROS.MICROSOFTONLINE.COM,CN=System,{base}",
            partner="KERBEROS.MICROSOFTONLINE.COM",
            direction=1,
            trust_type=2,
            attributes=8,
            top_level_names=tlns,
            keys_updated_on=key_updated_on,
        )
        if with_tdo
        else None
    )
    return OnPremState(domain, server, tdo, None, read_from=f"dc1.{domain}", ldap_operations=1)


def cloud_of(state: OnPremState) -> CloudKerberosDomain | None:
    server = state.server
    if server is None or server.key is None or server.server_id is None:
        return None
    tdo = state.trusted_domain
    return CloudKerberosDomain(
        id=server.server_id,
        display_name=server.display_name or "",
        domain_dns_name=state.domain_dns_name,
        key_version=server.key.version,
        key_updated_on=server.key.updated_on,
        trust_display=TRUST_DISPLAY_TYPE if tdo else None,
        top_level_names=tdo.top_level_names if tdo else (),
    )


@dataclass
class FakeDirectory:
    state: OnPremState
    error: KerberosBotError | None = None
    reads: int = 0

    @property
    def domain_dns_name(self) -> str:
        return self.state.domain_dns_name

    async def read_kerberos_objects(self) -> OnPremState:
        self.reads += 1
        if self.error:
            raise self.error
        return self.state

    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        key = self.state.server.key if self.state.server else None
        return {f"ldaps://dc1.{self.domain_dns_name}": key.version if key else None}


@dataclass
class FakeKerberosModule:
    """Cloud objects by domain; the on-prem half comes from the fake directories."""

    directories: dict[str, FakeDirectory]
    cloud: dict[str, CloudKerberosDomain] = field(default_factory=dict)
    error: KerberosBotError | None = None
    set_calls: int = 0
    hang: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)  # set when a changing call starts
    refuse_top_level_names: Callable[[tuple[str, ...]], bool] | None = None  # the LSA's refusal, in the fake
    clock: Callable[[], datetime] = lambda: NOW  # when its changes happen (the 24-hour rule reads it too)
    calls: list[SetServerOptions] = field(default_factory=list)  # every Set-AzureADKerberosServer, in order
    batch_reads: int = 0  # get_servers calls (a status of several domains asks the module once)

    @classmethod
    def in_step(
        cls, directories: dict[str, FakeDirectory], clock: Callable[[], datetime] = lambda: NOW
    ) -> FakeKerberosModule:
        cloud = {name: c for name, d in directories.items() if (c := cloud_of(d.state)) is not None}
        return cls(directories, cloud, clock=clock)

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        if self.error:
            raise self.error
        if domain_dns_name not in self.directories:
            raise UnknownDomainError(domain_dns_name, list(self.directories))
        state = self.directories[domain_dns_name].state
        return KerberosServerReport.combine(state.server, domain_dns_name, self.cloud.get(domain_dns_name))

    async def get_servers(self, domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        self.batch_reads += 1
        return await each_server(self.get_server, domain_dns_names)

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        """As the module does it, on both halves: creates the server (and with ``setup_cloud_trust`` the
        trusted domain object), or rotates: a new key in AD and the same in Entra."""
        if self.error:
            raise self.error
        await self._pause()
        directory = self.directories[domain_dns_name]
        state = directory.state
        if state.server is None:
            fresh = on_prem_state(domain_dns_name, key_updated_on=self.clock(), with_tdo=False)
            state = replace(state, server=fresh.server)
        if options.setup_cloud_trust and state.trusted_domain is None:
            names = tuple(options.top_level_names or ("windows.net",))
            if self.refuse_top_level_names is not None and self.refuse_top_level_names(names):
                directory.state = state  # the server and the trust account exist; the LSA call failed
                raise KerberosModuleError("LsaSetForestTrustInformation failed: 0xC000000D (invalid parameter)")
            state = replace(state, trusted_domain=on_prem_state(domain_dns_name, tlns=names).trusted_domain)
        server = state.server
        if options.rotate_server_key and server is not None and server.key is not None:
            if not options.force and server.key.updated_on + timedelta(hours=24) > self.clock():
                raise KerberosModuleError("The key was rotated less than 24 hours ago; use -Force to rotate again.")
            key = replace(
                server.key, version=server.key.version + 1000, updated_on=self.clock(), kvno=(server.key.kvno or 0) + 1
            )
            state = replace(state, server=replace(server, key=key))
            tdo = state.trusted_domain
            if options.setup_cloud_trust and tdo is not None:  # -SetupCloudTrust: the trust's keys too
                moved = max(self.clock(), (tdo.keys_updated_on or self.clock()) + timedelta(seconds=1))
                version, usn = tdo.keys_change or (1, 1000)
                state = replace(
                    state, trusted_domain=replace(tdo, keys_updated_on=moved, keys_change=(version + 1, usn + 1000))
                )
        directory.state = state
        if (cloud := cloud_of(directory.state)) is not None:
            self.cloud[domain_dns_name] = cloud
        self.set_calls += 1
        self.calls.append(options)
        return await self.get_server(domain_dns_name)

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        if self.error:
            raise self.error
        await self._pause()
        directory = self.directories[domain_dns_name]
        directory.state = replace(directory.state, trusted_domain=None)
        if domain_dns_name in self.cloud:
            self.cloud[domain_dns_name] = replace(self.cloud[domain_dns_name], trust_display=None, top_level_names=())

    async def remove_server(self, domain_dns_name: str) -> None:
        if self.error:
            raise self.error
        await self._pause()
        directory = self.directories[domain_dns_name]
        directory.state = replace(directory.state, server=None, trusted_domain=None)
        self.cloud.pop(domain_dns_name, None)

    async def _pause(self) -> None:
        """A module call that takes its time (``hang``: until the test sets it)."""
        self.entered.set()
        if self.hang is not None:
            await self.hang.wait()


@dataclass
class FakeEntra:
    events: list[AuditEvent] = field(default_factory=list)
    error: KerberosBotError | None = None

    async def tenant(self) -> TenantInfo:
        return TenantInfo("00000000-0000-0000-0000-00000000c0de", "Contoso", ("contoso.test",))

    async def kerberos_domain_events(
        self, domain_dns_name: str, *, since: datetime | None = None, limit: int = 20
    ) -> list[AuditEvent]:
        if self.error:
            raise self.error
        found = [e for e in self.events if domain_dns_name in e.targets and (since is None or e.at >= since)]
        return sorted(found, key=lambda e: e.at, reverse=True)[:limit]


def audit_event(domain: str, at: datetime, activity: str = "Update kerberos domain") -> AuditEvent:
    return AuditEvent(
        id=f"evt-{at.timestamp():.0f}",
        activity=activity,
        at=at,
        result="success",
        initiated_by="admin@contoso.test",
        targets=(domain,),
    )


@dataclass
class FakeGroups:
    groups: dict[str, frozenset[str]] = field(default_factory=dict)

    async def members(self, group_id: str) -> frozenset[str]:
        return self.groups.get(group_id, frozenset())


class FakeCommandQueue(MemoryCommandQueue):
    """The memory queue, and ``failures``: the next takes raise (a queue that went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Connection refused")
        return await super().take(consumer, count=count, block_ms=block_ms)


# the suites' names for the product's in-memory ports
FakeNoticePreferences = MemoryNoticePreferences
FakeRateLimiter = MemoryRateLimiter
FakeLeadership = MemoryLeadership
FakeSchedulerMemory = MemorySchedulerMemory
FakeFreezes = MemoryFreezes
