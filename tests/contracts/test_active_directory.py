"""The ActiveDirectory port: FakeDirectory and LdapDirectory on the Samba DC read the same things."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.domain.ports import ActiveDirectory
from tests.support.fakes import FakeDirectory, on_prem_state
from tests.support.samba import SambaDC, SeedState, seed

Seeder = Callable[[SeedState], Awaitable[None]]


@dataclass
class Subject:
    directory: ActiveDirectory
    seed: Seeder


@pytest.fixture(params=["fake", "ldap"])
def subject(request: pytest.FixtureRequest) -> Subject:
    """The fake, or the real adapter; only the real one starts what it needs (so `--fast` starts nothing)."""
    subject: Subject = request.getfixturevalue(f"{request.param}_subject")
    return subject


@pytest.fixture
async def fake_subject() -> AsyncIterator[Subject]:
    fake = FakeDirectory(on_prem_state("contoso.test"))

    async def seed_fake(state: SeedState) -> None:
        fake.state = on_prem_state(
            "contoso.test",
            with_server=state != SeedState.NO_SERVER,
            with_tdo=state == SeedState.SERVER_WITH_TDO,
        )

    yield Subject(fake, seed_fake)


@pytest.fixture
async def ldap_subject(contoso_dc: SambaDC) -> AsyncIterator[Subject]:
    dc = contoso_dc
    directory = dc.ldap_directory()

    async def seed_dc(state: SeedState) -> None:
        await seed(dc, state)

    yield Subject(directory, seed_dc)
    await seed(dc, SeedState.SERVER_WITH_TDO)
    await directory.close()


async def test_the_domain_name_is_the_configured_one(subject: Subject) -> None:
    assert subject.directory.domain_dns_name == "contoso.test"


async def test_a_server_with_the_cloud_trust_reads_as_the_module_creates_it(subject: Subject) -> None:
    await subject.seed(SeedState.SERVER_WITH_TDO)
    state = await subject.directory.read_kerberos_objects()
    assert state.domain_dns_name == "contoso.test"
    server = state.server
    assert server is not None and server.key is not None and server.key.version > 0
    assert server.krbtgt_dn is not None and server.krbtgt_dn.startswith("CN=krbtgt_AzureAD,")
    assert server.computer_dn is not None and server.computer_dn.startswith("CN=AzureADKerberos,")
    assert state.trusted_domain is not None and state.trusted_domain.partner.upper() == "KERBEROS.MICROSOFTONLINE.COM"
    assert "windows.net" in state.trusted_domain.top_level_names
    assert state.read_from


async def test_fido_only_has_the_server_and_no_trust(subject: Subject) -> None:
    await subject.seed(SeedState.FIDO_ONLY)
    state = await subject.directory.read_kerberos_objects()
    assert state.server is not None and state.trusted_domain is None


async def test_no_server_reads_as_nothing(subject: Subject) -> None:
    await subject.seed(SeedState.NO_SERVER)
    state = await subject.directory.read_kerberos_objects()
    assert state.server is None and state.trusted_domain is None


async def test_every_dc_reports_the_key_version_the_objects_show(subject: Subject) -> None:
    await subject.seed(SeedState.SERVER_WITH_TDO)
    state = await subject.directory.read_kerberos_objects()
    assert state.server is not None and state.server.key is not None
    versions = await subject.directory.read_key_versions_per_dc()
    assert versions and set(versions.values()) == {state.server.key.version}
