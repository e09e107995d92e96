"""The KerberosModule port: the in-memory fake and the emulator (AD half on the Samba DC, cloud half
in the Entra stand-in) do the module's operations alike, on both halves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from kerberos_sandbox.sandbox import Sandbox, seed

from bot.domain.errors import KerberosBotError, KerberosModuleError
from bot.domain.ports import ActiveDirectory, KerberosModule, SetServerOptions
from tests.support.fakes import FakeDirectory, FakeKerberosModule, on_prem_state

DOMAIN = "contoso.test"


@dataclass
class Subject:
    module: KerberosModule
    directory: ActiveDirectory


@pytest.fixture(params=["fake", "emulator"])
def subject(request: pytest.FixtureRequest) -> Subject:
    """The fake, or the real adapter; only the real one starts what it needs (so `--fast` starts nothing)."""
    subject: Subject = request.getfixturevalue(f"{request.param}_subject")
    return subject


@pytest.fixture
async def fake_subject() -> AsyncIterator[Subject]:
    directories = {DOMAIN: FakeDirectory(on_prem_state(DOMAIN))}
    yield Subject(FakeKerberosModule.in_step(directories), directories[DOMAIN])


@pytest.fixture
async def emulator_subject(box: Sandbox) -> AsyncIterator[Subject]:
    await seed(box.domains, box.components)  # contoso: server with the cloud trust
    yield Subject(box.components.module, box.components.directories[DOMAIN])
    await seed(box.domains, box.components)


async def test_a_set_up_domain_reports_both_halves_in_step(subject: Subject) -> None:
    report = await subject.module.get_server(DOMAIN)
    assert report.has_on_prem and report.has_cloud
    assert report.key_version == report.cloud_key_version and report.id == report.cloud_id
    assert report.cloud_trust_display


async def test_many_domains_are_answered_each_with_its_report_or_why_not(subject: Subject) -> None:
    answers = await subject.module.get_servers([DOMAIN, "nowhere.test"])
    assert answers[DOMAIN] == await subject.module.get_server(DOMAIN)
    assert isinstance(answers["nowhere.test"], KerberosBotError)  # one domain's failure is its own answer


async def test_a_forced_rotation_changes_the_key_in_ad_and_entra(subject: Subject) -> None:
    before = await subject.module.get_server(DOMAIN)
    after = await subject.module.set_server(DOMAIN, SetServerOptions(rotate_server_key=True, force=True))
    assert after.key_version is not None and before.key_version is not None and after.key_version > before.key_version
    assert after.cloud_key_version == after.key_version
    state = await subject.directory.read_kerberos_objects()
    assert state.server is not None and state.server.key is not None and state.server.key.version == after.key_version


async def test_a_second_rotation_within_24_hours_needs_force(subject: Subject) -> None:
    await subject.module.set_server(DOMAIN, SetServerOptions(rotate_server_key=True, force=True))
    with pytest.raises(KerberosModuleError, match="24 hours"):
        await subject.module.set_server(DOMAIN, SetServerOptions(rotate_server_key=True))


async def test_removing_the_tdo_keeps_the_server_and_clears_the_cloud_trust(subject: Subject) -> None:
    await subject.module.remove_trusted_domain_object(DOMAIN)
    state = await subject.directory.read_kerberos_objects()
    assert state.trusted_domain is None and state.server is not None
    report = await subject.module.get_server(DOMAIN)
    assert report.has_on_prem and report.has_cloud and not report.cloud_trust_display


async def test_removing_the_server_removes_both_halves_and_setup_brings_them_back(subject: Subject) -> None:
    await subject.module.remove_server(DOMAIN)
    state = await subject.directory.read_kerberos_objects()
    assert state.server is None and state.trusted_domain is None
    report = await subject.module.get_server(DOMAIN)
    assert not report.has_on_prem and not report.has_cloud
    created = await subject.module.set_server(DOMAIN, SetServerOptions(setup_cloud_trust=True))
    assert created.has_on_prem and created.has_cloud and created.key_version == created.cloud_key_version
    state = await subject.directory.read_kerberos_objects()
    assert state.server is not None and state.trusted_domain is not None
