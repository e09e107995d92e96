import asyncio

import pytest

from bot.domain.errors import UnknownDomainError
from bot.domain.findings import Health
from bot.services.status import StatusService
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state


def service() -> tuple[StatusService, dict[str, FakeDirectory]]:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test")),
        "fabrikam.test": FakeDirectory(on_prem_state("fabrikam.test", with_server=False, with_tdo=False)),
    }
    module = FakeKerberosModule.in_step(directories)
    return StatusService(directories, module, FakeEntra(), clock=lambda: NOW), directories


async def test_all_domains_without_a_name() -> None:
    svc, _ = service()
    statuses = await svc.status()
    assert {s.domain: s.diagnosis.health for s in statuses} == {
        "contoso.test": Health.HEALTHY,
        "fabrikam.test": Health.ABSENT,
    }


async def test_domain_name_is_case_and_dot_insensitive() -> None:
    svc, _ = service()
    [status] = await svc.status("Contoso.Test.")
    assert status.domain == "contoso.test"


async def test_unknown_domain_names_the_configured_ones() -> None:
    svc, _ = service()
    with pytest.raises(UnknownDomainError) as err:
        await svc.status("nope.test")
    assert "contoso.test" in err.value.user_message and "fabrikam.test" in err.value.user_message


async def test_concurrent_requests_share_one_read_per_domain() -> None:
    svc, directories = service()
    gate = asyncio.Event()
    original = directories["contoso.test"].read_kerberos_objects

    async def slow():  # type: ignore[no-untyped-def]
        await gate.wait()
        return await original()

    directories["contoso.test"].read_kerberos_objects = slow  # type: ignore[method-assign]
    waiting = [asyncio.ensure_future(svc.status("contoso.test")) for _ in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiting)
    assert directories["contoso.test"].reads == 1
    assert all(r[0].diagnosis.health == Health.HEALTHY for r in results)
    await svc.status("contoso.test")
    assert directories["contoso.test"].reads == 2  # a later request reads again
