"""Fixtures for the integration tests on the real Samba DCs (tests/support/samba.py; Entra: tests/support/entra.py).

- ``contoso_dc`` (session): the CONTOSO.TEST DC, started once; a ``SambaDC`` with host, base_dn,
  admin_user/admin_password, ca_file, smb_conf, ldaps_url/starttls_url and endpoint()/module() helpers.
- ``fabrikam_dc`` (session): FABRIKAM.TEST on the second address, started only when a test asks.
- ``seed_domain``: ``await seed_domain(dc, SeedState.FIDO_ONLY)`` -> the ``OnPremState`` read back.
- ``onprem``: the emulator's AD half on contoso, seeded "server without TDO"; closed after the test.
- ``directory``: an ``LdapDirectory`` on contoso over LDAPS with CA validation; closed after the test.
- ``redis_server``: a private redis-server of the test's own (``PrivateRedis``), stopped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from kerberos_sandbox.redis_server import PrivateRedis

from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.ldap.directory import LdapDirectory
from bot.domain.model import OnPremState
from tests.support.samba import SambaDC, SeedState, contoso, ensure_up, fabrikam, seed
from tests.support.sandboxes import box  # noqa: F401  (the shared module-scoped sandbox fixture)

SeedDomain = Callable[[SambaDC, SeedState], Awaitable[OnPremState]]


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A private redis-server (append-only, fsync always) of the test's own, stopped after it."""
    server = PrivateRedis(tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def contoso_dc() -> SambaDC:
    return await ensure_up(contoso())


@pytest.fixture(scope="session")
async def fabrikam_dc() -> SambaDC:
    return await ensure_up(fabrikam())


@pytest.fixture
def seed_domain() -> SeedDomain:
    return seed


@pytest.fixture
async def onprem(contoso_dc: SambaDC) -> AsyncIterator[EmulatedOnPremModule]:
    await seed(contoso_dc, SeedState.FIDO_ONLY)
    module = contoso_dc.module()
    yield module
    await module.close()


@pytest.fixture
async def directory(contoso_dc: SambaDC) -> AsyncIterator[LdapDirectory]:
    d = contoso_dc.ldap_directory()
    yield d
    await d.close()
