"""Fixtures for the integration tests on the real Samba DCs (the Entra ones: tests/support/entra.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.adapters.ad_ldap import LdapDirectory
from bot.adapters.kerberos_module.emulator_ad import EmulatedOnPremModule
from bot.adapters.ldap_connection import LdapEndpoint
from bot.sandbox.sandbox import ADMIN_PASSWORD, DEFAULT_DOMAINS, SandboxDomain, samba

CONTOSO, FABRIKAM = DEFAULT_DOMAINS


def endpoint(domain: SandboxDomain, **overrides: Any) -> LdapEndpoint:
    values: dict[str, Any] = {
        "domain_dns_name": domain.name,
        "base_dn": ",".join(f"DC={p}" for p in domain.name.split(".")),
        "ldap_urls": [f"ldaps://{domain.address}:636"],
        "bind_user": f"Administrator@{domain.name}",
        "bind_password": ADMIN_PASSWORD,
        "ca_file": domain.ca_file,
        "connect_timeout": 2.0,
        "operation_timeout": 5.0,
    }
    values.update(overrides)
    return LdapEndpoint(**values)


@pytest.fixture(scope="session")
async def contoso_dc() -> SandboxDomain:
    """The CONTOSO.TEST Samba DC on 127.0.0.1, running (started once per session)."""
    await samba("up", CONTOSO)
    return CONTOSO


@pytest.fixture
async def onprem(contoso_dc: SandboxDomain) -> AsyncIterator[EmulatedOnPremModule]:
    """The emulator's AD half for contoso, with the server objects and no TDO; cleaned up after."""
    module = EmulatedOnPremModule(endpoint(contoso_dc), samba_conf=contoso_dc.smb_conf)
    await module.delete_server()
    await module.create_server()
    yield module
    await module.close()


@pytest.fixture
async def directory(contoso_dc: SandboxDomain) -> AsyncIterator[LdapDirectory]:
    d = LdapDirectory(endpoint(contoso_dc), configuration_dn="CN=Configuration,DC=contoso,DC=test")
    yield d
    await d.close()
