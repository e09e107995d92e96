import asyncio

import pytest

from bot.domain.errors import UnknownDomainError
from bot.domain.findings import Health
from bot.services.status import READS_AT_ONCE, StatusService
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


async def test_a_hundred_domains_are_read_at_once_but_ten_at_a_time() -> None:
    """A status of every domain reads them in parallel, bounded: a hundred domains never open a hundred
    connections, or a hundred module calls on the management host, at once."""
    in_flight, most = 0, 0

    class CountingDirectory(FakeDirectory):
        async def read_kerberos_objects(self):  # type: ignore[no-untyped-def]
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().read_kerberos_objects()

    directories = {f"d{i:03}.test": CountingDirectory(on_prem_state(f"d{i:03}.test")) for i in range(100)}
    module = FakeKerberosModule.in_step(dict(directories))
    statuses = await StatusService(directories, module, FakeEntra(), clock=lambda: NOW).status()
    assert len(statuses) == 100 and most == READS_AT_ONCE
