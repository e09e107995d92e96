"""The world the bot changes: an AD domain over LDAP, Entra ID over Graph, and the Kerberos module that
changes both (Microsoft's, over PowerShell Remoting, or the emulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.errors import KerberosBotError
from bot.domain.model import AuditEvent, KerberosServerReport, OnPremState, TenantInfo


class ActiveDirectory(Protocol):
    """One AD domain, reached over LDAP(S) through a pool of its DCs."""

    @property
    def domain_dns_name(self) -> str: ...

    async def read_kerberos_objects(self) -> OnPremState:
        """The Entra Kerberos server's objects: computer, krbtgt, key metadata, SCP, TDO."""
        ...

    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        """KeyVersion as each configured DC sees it (None where a DC did not answer)."""
        ...


class EntraDirectory(Protocol):
    """Microsoft Entra ID through its public API (Microsoft Graph)."""

    async def tenant(self) -> TenantInfo: ...

    async def kerberos_domain_events(
        self, domain_dns_name: str, *, since: datetime | None = None, limit: int = 20
    ) -> list[AuditEvent]:
        """Audit events of category ``KerberosDomain`` for this domain, newest first."""
        ...


@dataclass(frozen=True)
class SetServerOptions:
    """The switches of ``Set-AzureADKerberosServer``."""

    setup_cloud_trust: bool = False
    top_level_names: Sequence[str] | None = None
    rotate_server_key: bool = False
    force: bool = False


class KerberosModule(Protocol):
    """The operations of Microsoft's AzureADHybridAuthenticationManagement module.

    Production runs the real module on a Windows management host; tests and the demo use the
    emulator, which changes the test directory for real and keeps the cloud half in the Entra
    stand-in.
    """

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        """``Get-AzureAdKerberosServer -Domain <domain>``."""
        ...

    async def get_servers(self, domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        """``Get-AzureAdKerberosServer`` for every domain at once (one session to the management host, which reads
        them in parallel): each domain's report, or why that domain's could not be read."""
        ...

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        """``Set-AzureADKerberosServer`` (create, -SetupCloudTrust, -RotateServerKey, -Force)."""
        ...

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        """``Remove-AzureADKerberosServerTrustedDomainObject``: the TDO only."""
        ...

    async def remove_server(self, domain_dns_name: str) -> None:
        """``Remove-AzureAdKerberosServer``: TDO, krbtgt account, computer and cloud object."""
        ...


async def each_server(
    get_server: Callable[[str], Awaitable[KerberosServerReport]], domain_dns_names: Sequence[str], *, at_once: int = 8
) -> dict[str, KerberosServerReport | KerberosBotError]:
    """``get_servers`` for a module whose reads cost no session (the emulator, the fakes): ``at_once`` domains at a
    time, as the management host reads them, a domain's failure kept as its answer."""
    gate = asyncio.Semaphore(at_once)

    async def one(name: str) -> KerberosServerReport | KerberosBotError:
        try:
            async with gate:
                return await get_server(name)
        except KerberosBotError as exc:
            return exc

    answers = await asyncio.gather(*(one(name) for name in domain_dns_names))
    return dict(zip(domain_dns_names, answers, strict=True))
