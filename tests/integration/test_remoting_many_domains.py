"""A status of many domains over remoting: one session to the management host, one pipeline that reads every
domain there in parallel (``read_many.ps1``, or the JEA endpoint's ``Get-KerberosBotServers``), one answer per
domain, and one domain's failure that domain's alone. The host is the fake WinRM endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from bot.adapters.kerberos_module.remoting.calls import READ_MANY_SCRIPT
from bot.domain.errors import KerberosModuleError
from bot.domain.model import KerberosServerReport
from tests.integration.test_remoting_transport import CREDENTIALS, SAMPLE, SECRETS, jea_runner, runner
from tests.support.winrm import Answer, FakeWinRM, ReceivedPipeline, fake_winrm

REPORT = json.loads(SAMPLE)
DOMAINS = [f"d{n:02}.contoso.com" for n in range(20)]


@pytest.fixture
def host() -> Iterator[tuple[FakeWinRM, int]]:
    with fake_winrm(password=SECRETS[0]) as running:
        yield running


def each_domain(
    failing: dict[str, str] | None = None, *, leave_out: str | None = None
) -> Callable[[ReceivedPipeline], Answer]:
    """The host's answer: a report line per domain asked, an error line for those ``failing``."""

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
