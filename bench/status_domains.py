"""A status of every domain, with 1, 10 and 100 configured: its time and its LDAP operations per domain.

Starts the sandbox (real Samba DCs) and configures N domains that are all the sandbox's contoso.test
under alias names (each its own LDAP connection, as N real domains would have); the module's answer is
contoso.test's for every alias. Prints, per N, the first status (binds included) and the median of the
warm ones, and the LDAP operations each domain cost.

usage: python -m bench.status_domains [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from kerberos_sandbox.sandbox import sandbox

from bot.adapters.ldap.directory import LdapDirectory
from bot.bootstrap.adapters import ldap_directory
from bot.config import load_bot_config
from bot.domain.model import KerberosServerReport
from bot.domain.ports import KerberosModule
from bot.services.status import READS_AT_ONCE, StatusService
from tests.support.fakes import FakeEntra
from tests.support.samba import sandbox_domains


class SameServer:
    """The module's answer for contoso.test, whatever alias is asked."""

    def __init__(self, module: KerberosModule) -> None:
        self._module = module

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        return await self._module.get_server("contoso.test")


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


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with sandbox(sandbox_domains(), workdir=Path(workdir)) as box:
            contoso = load_bot_config(box.config_path).domain("contoso.test")
            assert contoso is not None
            module = SameServer(box.components.module)
            print(
                f"status of N domains (each the sandbox's contoso.test under another name), {READS_AT_ONCE} at a time"
            )
            print(f"{'domains':>8} {'first s':>9} {'warm s (median)':>16} {'x one':>7} {'LDAP ops/domain':>16}")
            one = None
            for count in (1, 10, 100):
                directories = {f"d{i:03}.contoso.test": ldap_directory(contoso) for i in range(count)}
                service = StatusService(directories, module, FakeEntra())  # type: ignore[arg-type]
                try:
                    first, warm, per_domain = await measure(service, directories, rounds)
                finally:
                    for directory in directories.values():
                        await directory.close()
                one = one or warm
                print(f"{count:>8} {first:>9.3f} {warm:>16.3f} {warm / one:>7.1f} {per_domain:>16.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="warm statuses per size")
    asyncio.run(main(parser.parse_args().rounds))
