import asyncio
from collections.abc import Sequence

import pytest

from bot.domain.errors import KerberosBotError, KerberosModuleError, UnknownDomainError
from bot.domain.findings import Health
from bot.domain.model import KerberosServerReport
from bot.services.status import READS_AT_ONCE, StatusService
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state
from tests.support.waiting import until


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
    connections at once, and the management host is asked once for all of them."""
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
    assert module.batch_reads == 1


async def test_a_domain_the_module_could_not_read_is_that_domains_finding_only() -> None:
    _, directories = service()
    module = FakeKerberosModule.in_step(directories)
    original = module.get_server

    async def refusing(domain_dns_name: str) -> KerberosServerReport:
        if domain_dns_name == "contoso.test":
            raise KerberosModuleError("Get-AzureAdKerberosServer failed: AADSTS50076")
        return await original(domain_dns_name)

    module.get_server = refusing  # type: ignore[method-assign]
    statuses = {s.domain: s for s in await StatusService(directories, module, FakeEntra(), clock=lambda: NOW).status()}
    contoso = statuses["contoso.test"]
    assert contoso.cloud_unavailable is not None and "AADSTS50076" in contoso.cloud_unavailable
    assert contoso.report is not None and contoso.report.key_version is not None  # AD's half is still shown
    assert statuses["fabrikam.test"].cloud_unavailable is None
    assert statuses["fabrikam.test"].diagnosis.health == Health.ABSENT


async def test_a_module_session_that_fails_as_a_whole_is_each_domains_finding() -> None:
    _, directories = service()
    module = FakeKerberosModule.in_step(directories)

    async def failing(names):  # type: ignore[no-untyped-def]
        raise KerberosModuleError("The management host did not answer.")

    module.get_servers = failing  # type: ignore[method-assign]
    statuses = await StatusService(directories, module, FakeEntra(), clock=lambda: NOW).status()
    assert [s.cloud_unavailable for s in statuses] == ["The management host did not answer."] * 2
    assert statuses[0].report is not None and statuses[0].report.key_version is not None


async def test_waiting_for_the_management_host_holds_up_no_directory_read() -> None:
    """The module's one read of every domain takes longest in production (a session, then rounds on the host):
    meanwhile every domain's AD and Entra reads go ahead, so a status of many costs about the module's time."""
    directories = {f"d{i:03}.test": FakeDirectory(on_prem_state(f"d{i:03}.test")) for i in range(30)}
    module = FakeKerberosModule.in_step(dict(directories))
    host_answers = asyncio.Event()
    read_all = module.get_servers

    async def slow_host(domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        await host_answers.wait()
        return await read_all(domain_dns_names)

    module.get_servers = slow_host  # type: ignore[method-assign]
    status = asyncio.ensure_future(StatusService(directories, module, FakeEntra(), clock=lambda: NOW).status())
    await until(lambda: sum(d.reads for d in directories.values()) == 30)  # all read before the host answers
    assert not status.done()
    host_answers.set()
    assert all(s.diagnosis.health == Health.HEALTHY for s in await status)
