"""The Kerberos module emulator: does what AzureADHybridAuthenticationManagement does.

The AD half changes the test directory for real (``EmulatedOnPremModule``); the cloud half writes
Entra's KerberosDomain object in the Entra stand-in (``CloudKerberosDomainStore``). ``get_server``
reads both back the way ``Get-AzureAdKerberosServer`` does, so verification through the AD
adapter sees real directory state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.domain.errors import KerberosBotError, KerberosModuleError, UnknownDomainError
from bot.domain.model import (
    DEFAULT_TOP_LEVEL_NAMES,
    TRUST_DISPLAY_TYPE,
    CloudKerberosDomain,
    KerberosServerReport,
    OnPremState,
)
from bot.domain.ports import ActiveDirectory, SetServerOptions, each_server

ROTATION_INTERVAL = timedelta(hours=24)


class OnPremHalf(Protocol):
    async def create_server(self) -> None: ...
    async def rotate_key(self) -> None: ...
    async def create_trusted_domain_object(self, top_level_names: Sequence[str]) -> None: ...
    async def rotate_trusted_domain_keys(self) -> None: ...
    async def delete_trusted_domain_object(self) -> None: ...
    async def delete_server(self) -> None: ...
    async def close(self) -> None: ...


class CloudHalf(Protocol):
    async def get(self, domain_dns_name: str) -> CloudKerberosDomain | None: ...
    async def put(self, domain: CloudKerberosDomain) -> None: ...
    async def delete(self, domain_dns_name: str) -> None: ...
    async def close(self) -> None: ...
    def signed_in_as(self, upn: str) -> CloudHalf: ...


@dataclass(frozen=True)
class EmulatedDomain:
    directory: ActiveDirectory
    on_prem: OnPremHalf
    is_forest_root: bool = True


class KerberosModuleEmulator:
    """Implements ``bot.domain.ports.KerberosModule``."""

    def __init__(
        self,
        domains: Mapping[str, EmulatedDomain],
        cloud: CloudHalf,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        owns_domains: bool = True,
    ) -> None:
        self._domains = dict(domains)
        self._owns_domains = owns_domains  # False: another emulator's AD halves, closed by that one
        self._cloud = cloud
        self._clock = clock
        # Called after the AD half of a change and before the cloud half; tests use it to kill a worker there.
        self.between_halves: Callable[[str], Awaitable[None]] | None = None
        # The real module is one PowerShell session per call; serialise changes per domain.
        self._locks = {name: asyncio.Lock() for name in self._domains}

    async def close(self) -> None:
        owned = self._domains.values() if self._owns_domains else ()
        await asyncio.gather(self._cloud.close(), *(d.on_prem.close() for d in owned))

    def signed_in_as(self, upn: str) -> KerberosModuleEmulator:
        """The module as a person runs it at the management host, signed in to Entra as ``upn``
        (``-UserPrincipalName``): the sandbox's operator, whose changes Entra's audit log names. Close it."""
        return KerberosModuleEmulator(self._domains, self._cloud.signed_in_as(upn), self._clock, owns_domains=False)

    def domain(self, name: str) -> EmulatedDomain:
        """One domain's halves; tests use it to change AD alone, as a manual reset would."""
        return self._domain(name)

    def _domain(self, name: str) -> EmulatedDomain:
        try:
            return self._domains[name]
        except KeyError:
            raise UnknownDomainError(name, list(self._domains)) from None

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        domain = self._domain(domain_dns_name)
        on_prem, cloud = await asyncio.gather(
            domain.directory.read_kerberos_objects(), self._cloud.get(domain_dns_name)
        )
        return KerberosServerReport.combine(on_prem.server, domain_dns_name, cloud)

    async def get_servers(self, domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        return await each_server(self.get_server, domain_dns_names)

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        domain = self._domain(domain_dns_name)
        async with self._locks[domain_dns_name]:
            state = await domain.directory.read_kerberos_objects()
            if options.setup_cloud_trust and not domain.is_forest_root and state.trusted_domain is None:
                # What the module reports when forest trust info is set from a child domain.
                raise KerberosModuleError(
                    "LsaCreateTrustedDomainEx 0x549 (ERROR_INVALID_DOMAIN_STATE): the cloud trust must be "
                    "created in the forest root domain; set up a child domain without -SetupCloudTrust."
                )
            if state.server is None:
                await domain.on_prem.create_server()
            elif options.rotate_server_key:
                self._check_rotation_interval(state, options.force, self._clock())
                await domain.on_prem.rotate_key()
            if options.setup_cloud_trust and state.trusted_domain is None:
                await domain.on_prem.create_trusted_domain_object(
                    list(options.top_level_names or DEFAULT_TOP_LEVEL_NAMES)
                )
            elif options.setup_cloud_trust and options.rotate_server_key and state.server is not None:
                # "Rotate the Kerberos key for your service account ... and Trusted Domain Object": with
                # -SetupCloudTrust the rotation gives the trust new keys too
                await domain.on_prem.rotate_trusted_domain_keys()
            if self.between_halves is not None:
                await self.between_halves(domain_dns_name)
            await self._publish(domain_dns_name, domain)
        return await self.get_server(domain_dns_name)

    @staticmethod
    def _check_rotation_interval(state: OnPremState, force: bool, now: datetime) -> None:
        key = state.server.key if state.server else None
        if key is None or force:
            return
        allowed_from = key.updated_on + ROTATION_INTERVAL
        if now < allowed_from:
            raise KerberosModuleError(
                "The key was rotated less than 24 hours ago (KeyUpdatedOn "
                f"{key.updated_on:%Y-%m-%d %H:%M} UTC); use -Force to rotate again before "
                f"{allowed_from:%Y-%m-%d %H:%M} UTC."
            )

    async def _publish(self, domain_dns_name: str, domain: EmulatedDomain) -> None:
        """Write Entra's object from what AD now holds, as the module does after each change."""
        state = await domain.directory.read_kerberos_objects()
        server = state.server
        if server is None or server.key is None or server.server_id is None:
            raise KerberosModuleError(f"The Kerberos server objects in {domain_dns_name} could not be read back.")
        tdo = state.trusted_domain
        await self._cloud.put(
            CloudKerberosDomain(
                id=server.server_id,
                display_name=server.display_name or f"krbtgt_{server.server_id}",
                domain_dns_name=domain_dns_name,
                key_version=server.key.version,
                key_updated_on=server.key.updated_on,
                trust_display=TRUST_DISPLAY_TYPE if tdo is not None else None,
                top_level_names=tdo.top_level_names if tdo is not None else (),
            )
        )

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        domain = self._domain(domain_dns_name)
        async with self._locks[domain_dns_name]:
            await domain.on_prem.delete_trusted_domain_object()
            state = await domain.directory.read_kerberos_objects()
            if state.server is not None:
                await self._publish(domain_dns_name, domain)

    async def remove_server(self, domain_dns_name: str) -> None:
        domain = self._domain(domain_dns_name)
        async with self._locks[domain_dns_name]:
            await domain.on_prem.delete_server()
            await self._cloud.delete(domain_dns_name)
