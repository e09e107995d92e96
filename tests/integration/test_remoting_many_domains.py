"""A status of many domains over remoting: one session to the management host, one pipeline that reads every
domain there in parallel (``read_many.ps1``, or the JEA endpoint's ``Get-KerberosBotServers``), one answer per
domain, and one domain's failure that domain's alone. The host is the fake WinRM endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from bot.adapters.kerberos_module.remoting.calls import MODULE_SCRIPT, READ_MANY_SCRIPT
from bot.domain.errors import KerberosModuleError
from bot.domain.model import KerberosServerReport
from bot.entrypoints.check import check_remoting
from bot.entrypoints.check_remoting import check_management_host
from tests.integration.test_remoting_transport import (
    CREDENTIALS,
    SAMPLE,
    SECRETS,
    jea_runner,
    module_answer,
    remoting_config,
    runner,
)
from tests.support.winrm import Answer, FakeWinRM, ReceivedPipeline, fake_winrm

REPORT = json.loads(SAMPLE)
DOMAINS = [f"d{n:02}.contoso.com" for n in range(20)]


@pytest.fixture
def host() -> Iterator[tuple[FakeWinRM, int]]:
    with fake_winrm(password=SECRETS[0]) as running:
        yield running


def each_domain(
    failing: dict[str, str] | None = None, *, leave_out: str | None = None, peak_memory_mb: int | None = None
) -> Callable[[ReceivedPipeline], Answer]:
    """The host's answer: a report line per domain asked, an error line for those ``failing``, and with
    ``peak_memory_mb`` the session's own last line."""

    def answer(pipeline: ReceivedPipeline) -> Answer:
        asked = pipeline.parameters.get("Domains") or pipeline.parameters["Domain"]
        lines = []
        for name in asked:
            if name == leave_out:
                continue
            if failing and name in failing:
                lines.append(json.dumps({"Domain": name, "Error": failing[name]}))
            else:
                lines.append(json.dumps({"Domain": name, "Report": REPORT}))
        if peak_memory_mb is not None:
            lines.append(json.dumps({"Session": {"PeakMemoryMB": peak_memory_mb}}))
        return Answer(output=tuple(lines))

    return answer


async def test_every_domain_is_read_in_one_session_and_one_failure_stays_its_own(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = each_domain({DOMAINS[3]: "AADSTS50076: Due to a configuration change you must use MFA"})

    answers = await runner(port, host_parallelism=6, endpoint=2).get_servers(DOMAINS)

    assert state.actions.count("Create") == 1 and state.actions.count("Command") == 1  # one pool, one pipeline
    [pipeline] = state.pipelines
    assert pipeline.is_script and pipeline.script == READ_MANY_SCRIPT
    assert pipeline.parameters["Domains"] == DOMAINS  # bound values, never script text
    assert pipeline.parameters["Parallelism"] == 6 and pipeline.parameters["Endpoint"] == 2
    assert pipeline.parameters["CloudCredential"] == (CREDENTIALS.cloud_user, CREDENTIALS.cloud_password)
    assert all(secret.encode() not in body for body in state.bodies for secret in SECRETS[1:])  # SecureStrings only
    assert set(answers) == set(DOMAINS)
    failed = answers.pop(DOMAINS[3])
    assert isinstance(failed, KerberosModuleError) and "AADSTS50076" in failed.user_message
    assert all(isinstance(a, KerberosServerReport) and a.cloud_key_version == 53325 for a in answers.values())


async def test_a_domain_the_host_does_not_answer_for_is_answered_with_an_error(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = each_domain(leave_out=DOMAINS[0])
    answers = await runner(port).get_servers(DOMAINS[:3])
    missing = answers[DOMAINS[0]]
    assert isinstance(missing, KerberosModuleError) and "named no report" in missing.user_message
    assert isinstance(answers[DOMAINS[1]], KerberosServerReport)


async def test_a_session_that_fails_as_a_whole_raises_in_words_an_operator_can_act_on(
    host: tuple[FakeWinRM, int],
) -> None:
    state, port = host
    state.answer = lambda _: Answer(
        errors=("kerberos-bot: module AzureADHybridAuthenticationManagement is not installed",)
    )
    with pytest.raises(KerberosModuleError, match="not installed on the management host"):
        await runner(port).get_servers(DOMAINS)


async def test_the_jea_endpoint_reads_many_with_its_own_function_and_no_credential(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = each_domain()
    answers = await jea_runner(port).get_servers(DOMAINS[:4])
    [pipeline] = state.pipelines
    assert not pipeline.is_script and pipeline.script == "Get-KerberosBotServers"
    assert pipeline.parameters == {"Domain": DOMAINS[:4], "Parallelism": 8, "Endpoint": 2}
    assert all(isinstance(a, KerberosServerReport) for a in answers.values())


HUNDRED = [f"d{n:03}.contoso.com" for n in range(100)]


async def test_a_hundred_domains_are_read_in_two_rounds_and_the_session_says_its_memory(
    host: tuple[FakeWinRM, int],
) -> None:
    state, port = host
    state.answer = each_domain(peak_memory_mb=612)
    module = runner(port)  # host_parallelism not set: sized for two rounds of the domains asked
    answers = await module.get_servers(HUNDRED)
    [pipeline] = state.pipelines
    assert pipeline.parameters["Parallelism"] == 50
    assert len(answers) == 100 and all(isinstance(a, KerberosServerReport) for a in answers.values())
    use = module.last_read_of_many
    assert use is not None and (use.domains, use.runspaces, use.rounds, use.peak_memory_mb) == (100, 50, 2, 612)


def checked_host(peak_memory_mb: int | None, failing: dict[str, str] | None = None) -> Callable[..., Answer]:
    """A host with the module installed whose reads of many domains answer as ``each_domain``."""
    many = each_domain(failing, peak_memory_mb=peak_memory_mb)

    def answer(pipeline: ReceivedPipeline) -> Answer:
        if pipeline.script in (MODULE_SCRIPT, "Get-KerberosBotModuleInfo"):
            return module_answer("2.4.0")
        if pipeline.script in (READ_MANY_SCRIPT, "Get-KerberosBotServers"):
            return many(pipeline)
        return Answer(output=(SAMPLE,))  # the cloud credential's read of the first domain

    return answer


@pytest.mark.parametrize(
    ("configured", "peak", "said", "fix"),
    [
        (None, 612, "2 rounds of Get-AzureAdKerberosServer (50 at once: sized for two rounds) in", ""),
        (None, 900, "peak memory 900 MB of the 1024 MB WinRM allows a shell by default", "host_parallelism = 42,"),
        (8, 160, "13 rounds of Get-AzureAdKerberosServer (8 at once: host_parallelism)", "host_parallelism = 50 "),
        (8, 400, "about 13 times one domain's read", "2500 MB by this session's peak per runspace; more than WinRM"),
        (None, None, "the host did not say the session's memory", ""),
    ],
)
async def test_check_reads_every_domain_once_and_weighs_the_sessions_memory(
    host: tuple[FakeWinRM, int], configured: int | None, peak: int | None, said: str, fix: str
) -> None:
    state, port = host
    state.answer = checked_host(peak)
    config = remoting_config(port, host_parallelism=configured)
    lines = await check_remoting(
        config, build=lambda _: runner(port, host_parallelism=configured), read_domain=HUNDRED[0], every_domain=HUNDRED
    )
    reached, module, cloud, every = lines
    assert reached.ok and module.ok and cloud.ok
    assert every.ok and every.name == "status of 100 domains" and said in every.detail
    assert fix in every.fix and (fix or not every.fix)
    assert state.pipelines[-1].script == READ_MANY_SCRIPT  # read as a status reads them: one pipeline for all


async def test_check_fails_a_status_of_every_domain_the_host_cannot_read(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = checked_host(300, {HUNDRED[7]: "AADSTS700016: application not found"})
    *_, every = await check_remoting(
        remoting_config(port), build=lambda _: runner(port), read_domain=HUNDRED[0], every_domain=HUNDRED
    )
    assert not every.ok and every.detail.startswith(f"1 of 100 not read; {HUNDRED[7]}: ") and "AADSTS" in every.detail

    state.answer = lambda pipeline: (
        Answer(errors=("Exception of type 'System.OutOfMemoryException' was thrown.",))
        if pipeline.script == READ_MANY_SCRIPT
        else checked_host(None)(pipeline)
    )
    *_, every = await check_remoting(
        remoting_config(port), build=lambda _: runner(port), read_domain=HUNDRED[0], every_domain=HUNDRED
    )
    assert not every.ok and "MaxMemoryPerShellMB" in every.detail and every.fix == "set host_parallelism lower"


async def test_check_asks_for_the_jea_endpoint_again_when_it_does_not_say_its_memory(
    host: tuple[FakeWinRM, int],
) -> None:
    state, port = host
    state.answer = checked_host(None)  # Get-KerberosBotServers as installed before the session's line
    config = remoting_config(port, mode="jea", domain_credential=None, cloud_credential=None)
    *_, every = await check_remoting(
        config, build=lambda _: jea_runner(port), read_domain=HUNDRED[0], every_domain=HUNDRED
    )
    assert every.ok and "did not say the session's memory" in every.detail
    assert "Install-KerberosBotJea.ps1 again" in every.fix


async def test_check_of_the_host_reads_the_first_domain_as_a_change_and_then_every_domain(
    host: tuple[FakeWinRM, int],
) -> None:
    state, port = host
    state.answer = checked_host(612)
    lines = await check_management_host(remoting_config(port), HUNDRED, build=lambda _: runner(port))
    assert [line.name for line in lines] == [
        "winrm 127.0.0.1",
        "module on 127.0.0.1",
        "cloud credential on 127.0.0.1",
        "status of 100 domains",
    ]
    assert all(line.ok for line in lines)
    single, many = state.pipelines[1:]
    assert single.parameters["Parameters"] == {"Domain": HUNDRED[0]} and many.parameters["Domains"] == HUNDRED

    state.pipelines.clear()
    assert len(await check_management_host(remoting_config(port), [], build=lambda _: runner(port))) == 2
    assert [p.script for p in state.pipelines] == [MODULE_SCRIPT]  # no domain configured: nothing read
