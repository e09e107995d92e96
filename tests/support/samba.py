"""The real Samba AD DCs of the integration tests, and seeding them into named states.

``samba-dc.sh up`` (``kerberos_sandbox/scripts``) (which installs the Debian packages when they are missing) starts one
private DC per domain: CONTOSO.TEST on 127.0.0.1 and, only when a test asks for it, FABRIKAM.TEST
on 127.0.0.2. Their directories are the sandbox's (``$KERBEROS_BOT_SAMBA_ROOT/<domain>``, default
``/tmp/kerberos-bot-samba``), so tests and the demo share one DC per domain instead of fighting
over the ports. To run the tests beside DCs someone else is using, give them other addresses and
another root, e.g. ``KERBEROS_BOT_TEST_DC_HOSTS=127.0.0.3,127.0.0.4 KERBEROS_BOT_SAMBA_ROOT=/tmp/mine``.

Seeding goes through the emulator's AD half (``EmulatedOnPremModule``), i.e. the same LDAP and LSA
calls the product makes, so a seeded domain looks as Set-AzureADKerberosServer leaves it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from kerberos_sandbox.samba_dc import DEFAULT_DOMAINS, SAMBA_SCRIPT, SambaInstance, SandboxDomain, samba_root
from ldap3 import Connection
from ldap3.core.exceptions import LDAPNoSuchObjectResult

from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.ldap.connection import LdapEndpoint, LdapSession
from bot.adapters.ldap.directory import LdapDirectory
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES, OnPremState

Entry = dict[str, Any]


class SeedState(StrEnum):
    SERVER_WITH_TDO = "server-with-tdo"  # Set-AzureADKerberosServer -SetupCloudTrust
    FIDO_ONLY = "fido-only"  # Set-AzureADKerberosServer without -SetupCloudTrust
    NO_SERVER = "no-server"  # never set up, or Remove-AzureADKerberosServer


@dataclass(frozen=True)
class SambaDC(SambaInstance):
    """One running test DC and everything needed to reach it."""

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.name.split("."))

    @property
    def configuration_dn(self) -> str:
        return f"CN=Configuration,{self.base_dn}"

    @property
    def admin_user(self) -> str:
        return f"Administrator@{self.name}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:636"

    @property
    def starttls_url(self) -> str:
        return f"ldap://{self.host}:389"

    @property
    def dc_dns_name(self) -> str:
        return f"dc1.{self.name}"  # samba-dc.sh provisions with --host-name=dc1

    def endpoint(self, **overrides: Any) -> LdapEndpoint:
        """LDAPS as Administrator, validating the instance's own CA; ``overrides`` replace fields."""
        values: dict[str, Any] = {
            "domain_dns_name": self.name,
            "base_dn": self.base_dn,
            "ldap_urls": [self.ldaps_url],
            "bind_user": self.admin_user,
            "bind_password": self.admin_password,
            "ca_file": self.ca_file,
            "tls_validate": True,
            "connect_timeout": 2.0,
            "operation_timeout": 5.0,
        }
        values.update(overrides)
        return LdapEndpoint(**values)

    def ldap_directory(self, **overrides: Any) -> LdapDirectory:
        return LdapDirectory(self.endpoint(**overrides), configuration_dn=self.configuration_dn)

    def module(self, **overrides: Any) -> EmulatedOnPremModule:
        return EmulatedOnPremModule(self.endpoint(**overrides), samba_conf=self.smb_conf)

    async def search(
        self, base: str, ldap_filter: str, attributes: Sequence[str], scope: str = "SUBTREE"
    ) -> list[Entry]:
        """Raw entries (``{"dn": ..., "raw": {lower-case attribute: [bytes]}}``) as Administrator; [] if no base."""
        session = LdapSession(self.endpoint())

        def run(conn: Connection) -> list[Entry]:
            try:
                return session.search(conn, base, ldap_filter, scope, attributes)
            except LDAPNoSuchObjectResult:
                return []

        try:
            return await session.run(run)
        finally:
            await session.close()

    async def entry(self, dn: str, attributes: Sequence[str] = ("objectClass",)) -> Entry | None:
        found = await self.search(dn, "(objectClass=*)", attributes, scope="BASE")
        return found[0] if found else None

    async def modify(self, operation: Callable[[Connection], object]) -> None:
        """Run a raw ldap3 write as Administrator (tests that set up unusual directory states)."""
        session = LdapSession(self.endpoint())
        try:
            await session.run(operation)
        finally:
            await session.close()


def _hosts() -> tuple[str, str]:
    given = [h.strip() for h in os.environ.get("KERBEROS_BOT_TEST_DC_HOSTS", "").split(",") if h.strip()]
    hosts = given + ["127.0.0.1", "127.0.0.2"][len(given) :]
    return hosts[0], hosts[1]


def contoso() -> SambaDC:
    return SambaDC("CONTOSO.TEST", "CONTOSO", _hosts()[0], samba_root() / "contoso.test")


def fabrikam() -> SambaDC:
    return SambaDC("FABRIKAM.TEST", "FABRIKAM", _hosts()[1], samba_root() / "fabrikam.test")


def pair_hosts() -> tuple[str, str]:
    """The two addresses of the two-DC contoso.test the replication tests and the demo test use
    (``KERBEROS_BOT_TEST_PAIR_HOSTS``, default 127.0.0.21,127.0.0.22)."""
    first, second = os.environ.get("KERBEROS_BOT_TEST_PAIR_HOSTS", "127.0.0.21,127.0.0.22").split(",")
    return first.strip(), second.strip()


def sandbox_domains() -> tuple[SandboxDomain, ...]:
    """The sandbox's two domains on the test DCs' addresses (``KERBEROS_BOT_TEST_DC_HOSTS``)."""
    # one DC per domain in the tests (the two-DC domain has its own module: test_replication.py)
    return tuple(replace(d, address=host, replica=None) for d, host in zip(DEFAULT_DOMAINS, _hosts(), strict=True))


async def run_script(dc: SambaDC, *args: str) -> str:
    """``scripts/samba-dc.sh <args>`` for ``dc``; its output (which explains failures) on error."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(SAMBA_SCRIPT),
        *args,
        env=dc.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"samba-dc.sh {' '.join(args)} for {dc.realm} failed (exit {proc.returncode}):\n{text}")
    return text


async def ensure_up(dc: SambaDC) -> SambaDC:
    """Install the packages if missing, provision (or restore the template) and start; a no-op when running."""
    await run_script(dc, "up")
    return dc


async def seed(
    dc: SambaDC, state: SeedState | str, *, top_level_names: Sequence[str] = DEFAULT_TOP_LEVEL_NAMES
) -> OnPremState:
    """Bring ``dc``'s domain into ``state`` (converging from whatever it holds) and return it as read."""
    state = SeedState(state)
    module, directory = dc.module(), dc.ldap_directory()
    try:
        if state is SeedState.NO_SERVER:
            await module.delete_server()
        else:
            await module.create_server()  # idempotent: creates what is missing, sets a fresh key
            current = (await directory.read_kerberos_objects()).trusted_domain
            wanted = state is SeedState.SERVER_WITH_TDO
            if current is not None and (not wanted or set(current.top_level_names) != set(top_level_names)):
                await module.delete_trusted_domain_object()
                current = None
            if wanted and current is None:
                await module.create_trusted_domain_object(list(top_level_names))
        return await directory.read_kerberos_objects()
    finally:
        await module.close()
        await directory.close()
