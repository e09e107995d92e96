"""A status of every domain, with 1, 10 and 100 configured: its time and its LDAP operations per domain.

Starts the sandbox (real Samba DCs) and configures N domains that are all the sandbox's contoso.test
under alias names (each its own LDAP connection, as N real domains would have); the module's answer is
contoso.test's for every alias. Prints, per N, the first status (binds included) and the median of the
warm ones, and the LDAP operations each domain cost.

Two settings. ``here``: as this machine is, every DC and the module's emulator on loopback, so a status is
CPU work on the same cores. ``far``: where the time goes in production, added to the same real reads: each
LDAP operation a read made waits ``--ldap-rtt-ms`` more, each Entra audit read ``--graph-ms``, and the
management host is a session of ``--session-seconds`` whose each ``Get-AzureAdKerberosServer`` takes
``--read-seconds``, ``--host-parallelism`` of them at once (auto: as the bot sizes it when the setting is unset,
two rounds' worth of the domains asked), one session at a time (``concurrency = 1``).

usage: python -m bench.status_domains [--rounds 5] [--far-only] [--ldap-rtt-ms 20] [--graph-ms 200]
       [--session-seconds 1] [--read-seconds 1] [--host-parallelism auto 8]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kerberos_sandbox.sandbox import sandbox

from bot.adapters.kerberos_module.remoting.calls import runspaces_for
from bot.adapters.ldap.directory import LdapDirectory
from bot.bootstrap.adapters import ldap_directory
from bot.config import load_bot_config
from bot.domain.errors import KerberosBotError
from bot.domain.model import AuditEvent, KerberosServerReport, OnPremState
from bot.domain.ports import KerberosModule, each_server
from bot.services.status import READS_AT_ONCE, StatusService
from tests.support.fakes import FakeEntra
from tests.support.samba import sandbox_domains

SIZES = (1, 10, 100)


@dataclass(frozen=True)
class Far:
    """Where the time goes in production (seconds)."""

    ldap_rtt: float
    graph: float
    session: float
    read: float
    host_parallelism: int | None  # None: as the adapter sizes it, two rounds of the domains asked

    def describe(self) -> str:
        at_once = "two rounds' worth" if self.host_parallelism is None else self.host_parallelism
        return (
            f"LDAP round trip {self.ldap_rtt * 1000:g} ms, Entra audit read {self.graph * 1000:g} ms, module session "
            f"{self.session:g} s + {self.read:g} s per Get, {at_once} at once on the host"
        )


class SameServer:
    """The module's answer for contoso.test, whatever alias is asked; ``far``: as the management host answers."""

    def __init__(self, module: KerberosModule, far: Far | None) -> None:
        self._module = module
        self._far = far
        self._sessions = asyncio.Semaphore(1)  # concurrency = 1: one remoting session at a time

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        report, _ = await asyncio.gather(self._module.get_server("contoso.test"), self._session(1))
        return report

    async def get_servers(self, domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        # far: the emulator's work (in production the host's) overlaps the session's time instead of adding to it
        reports, _ = await asyncio.gather(
            each_server(lambda _: self._module.get_server("contoso.test"), domain_dns_names),
            self._session(len(domain_dns_names)),
        )
        return reports

    async def _session(self, domains: int) -> None:
        if self._far is not None:
            async with self._sessions:
                rounds = math.ceil(domains / runspaces_for(domains, self._far.host_parallelism))
                await asyncio.sleep(self._far.session + rounds * self._far.read)


class FarDirectory:
    """The real directory; each LDAP operation a read made costs a round trip more."""

    def __init__(self, directory: LdapDirectory, rtt: float) -> None:
        self._directory = directory
        self._rtt = rtt

    @property
    def domain_dns_name(self) -> str:
        return self._directory.domain_dns_name

    async def read_kerberos_objects(self) -> OnPremState:
        before = self._directory.operations
        state = await self._directory.read_kerberos_objects()
        await asyncio.sleep(self._rtt * (self._directory.operations - before))
        return state

    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        return await self._directory.read_key_versions_per_dc()


class FarEntra(FakeEntra):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self._delay = delay

    async def kerberos_domain_events(
        self, domain_dns_name: str, *, since: datetime | None = None, limit: int = 20
    ) -> list[AuditEvent]:
        await asyncio.sleep(self._delay)
        return await super().kerberos_domain_events(domain_dns_name, since=since, limit=limit)


async def measure(
    service: StatusService, directories: dict[str, LdapDirectory], rounds: int
) -> tuple[float, float, float]:
    before = sum(d.operations for d in directories.values())
    started = time.perf_counter()
    await service.status()
    first = time.perf_counter() - started
    warm = []
    for _ in range(rounds):
        started = time.perf_counter()
        statuses = await service.status()
        warm.append(time.perf_counter() - started)
        assert len(statuses) == len(directories)
    per_domain = (sum(d.operations for d in directories.values()) - before) / len(directories) / (rounds + 1)
    return first, statistics.median(warm), per_domain


async def table(module: KerberosModule, config_path: Path, far: Far | None, rounds: int) -> None:
    contoso = load_bot_config(config_path).domain("contoso.test")
    assert contoso is not None
    print(f"{'domains':>8} {'first s':>9} {'warm s (median)':>16} {'x one':>7} {'LDAP ops/domain':>16}")
    one = None
    for count in SIZES:
        directories = {f"d{i:03}.contoso.test": ldap_directory(contoso) for i in range(count)}
        seen = {name: FarDirectory(d, far.ldap_rtt) if far else d for name, d in directories.items()}
        entra = FarEntra(far.graph) if far else FakeEntra()
        service = StatusService(seen, SameServer(module, far), entra)  # type: ignore[arg-type]
        try:
            first, warm, per_domain = await measure(service, directories, rounds)
        finally:
            for directory in directories.values():
                await directory.close()
        one = one or warm
        print(f"{count:>8} {first:>9.3f} {warm:>16.3f} {warm / one:>7.1f} {per_domain:>16.1f}")


async def main(rounds: int, far_only: bool, fars: list[Far]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with sandbox(sandbox_domains(), workdir=Path(workdir)) as box:
            module = box.components.module
            heading = f"status of N domains (each the sandbox's contoso.test under another name), {READS_AT_ONCE}"
            print(f"{heading} reads at a time per source, the module asked once for all")
            if not far_only:
                print("\nhere: every DC and the module's emulator on this machine")
                await table(module, box.config_path, None, rounds)
            for far in fars:
                print(f"\nfar: {far.describe()}")
                await table(module, box.config_path, far, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="warm statuses per size")
    parser.add_argument("--far-only", action="store_true", help="skip the table of this machine as it is")
    parser.add_argument("--ldap-rtt-ms", type=float, default=20.0, help="far: each LDAP operation's round trip")
    parser.add_argument("--graph-ms", type=float, default=200.0, help="far: each Entra audit read")
    parser.add_argument("--session-seconds", type=float, default=1.0, help="far: opening a remoting session")
    parser.add_argument("--read-seconds", type=float, default=1.0, help="far: one Get-AzureAdKerberosServer")
    parser.add_argument(
        "--host-parallelism",
        type=lambda value: None if value == "auto" else int(value),
        nargs="+",
        default=[None, 8],
        help="far: domains read at once on the host; auto (the default): as the bot sizes it, two rounds' worth",
    )
    options = parser.parse_args()
    fars = [
        Far(options.ldap_rtt_ms / 1000, options.graph_ms / 1000, options.session_seconds, options.read_seconds, n)
        for n in options.host_parallelism
    ]
    asyncio.run(main(options.rounds, options.far_only, fars))
