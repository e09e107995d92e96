"""The remoting runner through pypsrp's real transport against a local WinRM/PSRP endpoint (tests/support/winrm.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from kerberos_sandbox.redis_server import free_port

from bot.adapters.kerberos_module.remoting.calls import (
    MODULE_SCRIPT,
    RUN_SCRIPT,
    ModuleCredentials,
    RemotingSecrets,
    RemotingTarget,
    Timeouts,
)
from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule
from bot.bootstrap.module import build_remoting
from bot.config import RemotingConfig
from bot.domain.errors import ConfigurationError, KerberosModuleError
from bot.domain.hints import hint
from bot.domain.ports import SetServerOptions
from bot.entrypoints.check import check_remoting
from tests.support.waiting import until
from tests.support.winrm import Answer, FakeWinRM, ReceivedPipeline, fake_winrm

FIXTURES = Path(__file__).parents[1] / "fixtures" / "module"
SAMPLE = (FIXTURES / "with-cloud-trust.json").read_text()
REMOTING_PASSWORD = "Remoting-Passw0rd!"
CREDENTIALS = ModuleCredentials("CONTOSO\\svc-kerb-da", "Domain-S3cret-pw", "kerb-hia@contoso.com", "Cloud-S3cret-pw")
SECRETS = (REMOTING_PASSWORD, CREDENTIALS.domain_password, CREDENTIALS.cloud_password)
HOSTILE = "contoso.com'; Remove-AzureAdKerberosServer -Domain contoso.com; '\"$(whoami)"


@pytest.fixture
def host() -> Iterator[tuple[FakeWinRM, int]]:
    with fake_winrm(password=REMOTING_PASSWORD) as running:
        yield running


def runner(port: int, *, password: str = REMOTING_PASSWORD, **options: object) -> RemotingKerberosModule:
    # HTTP + Basic: what pypsrp allows without TLS or message encryption; production uses HTTPS.
    target = RemotingTarget(
        "127.0.0.1", "svc-kerberos-bot", password, port=port, ssl=False, auth="basic", encryption="never"
    )
    return RemotingKerberosModule(target, CREDENTIALS, **options)  # type: ignore[arg-type]


async def test_get_server_runs_the_constant_script_with_bound_values(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    report = await runner(port).get_server(HOSTILE)

    assert report.cloud_key_version == 53325 and report.cloud_top_level_names == ("usgovcloudapi.net", "windows.net")
    # open the pool, exchange the session key (for the SecureStrings), run, stop, close
    assert state.actions == ["Create", "Receive", "Send", "Receive", "Command", "Receive", "Signal", "Delete"]
    [pipeline] = state.pipelines
    assert pipeline.is_script and pipeline.script == RUN_SCRIPT
    assert pipeline.parameters["Cmdlet"] == "Get-AzureAdKerberosServer"
    assert pipeline.parameters["Parameters"] == {"Domain": HOSTILE}
    # the host decrypts the SecureStrings with the session key it sent
    assert pipeline.parameters["DomainCredential"] == (CREDENTIALS.domain_user, CREDENTIALS.domain_password)
    assert pipeline.parameters["CloudCredential"] == (CREDENTIALS.cloud_user, CREDENTIALS.cloud_password)
    assert "Endpoint" not in pipeline.parameters and pipeline.parameters["Report"] is False


async def test_rotation_binds_switches_and_reads_the_report_back(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    report = await runner(port, endpoint=2).set_server(
        "contoso.com", SetServerOptions(rotate_server_key=True, force=True)
    )
    assert report.key_version == 53325
    [pipeline] = state.pipelines
    assert pipeline.parameters["Cmdlet"] == "Set-AzureADKerberosServer"
    assert pipeline.parameters["Switches"] == ["RotateServerKey", "Force"]
    assert pipeline.parameters["Report"] is True and pipeline.parameters["Endpoint"] == 2
    # non-interactive: every cmdlet that has a Confirm parameter is called with -Confirm:$false (the
    # host runs the script it received; no prompt can be answered over remoting)
    assert "if ($info.Parameters.ContainsKey('Confirm')) { $all['Confirm'] = $false }" in pipeline.script
    assert pipeline.script.index("$all['Confirm'] = $false") < pipeline.script.index("& $info @all")


async def test_setup_with_sovereign_top_level_names(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    options = SetServerOptions(setup_cloud_trust=True, top_level_names=["usgovcloudapi.net", HOSTILE])
    await runner(port).set_server("contoso.com", options)
    parameters = state.pipelines[0].parameters
    assert parameters["Parameters"] == {"Domain": "contoso.com", "TopLevelNames": f"usgovcloudapi.net,{HOSTILE}"}
    assert parameters["Switches"] == ["SetupCloudTrust"]


async def test_removals_return_nothing(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    module = runner(port)
    await module.remove_trusted_domain_object("contoso.com")
    await module.remove_server("contoso.com")
    assert [p.parameters["Cmdlet"] for p in state.pipelines] == [
        "Remove-AzureADKerberosServerTrustedDomainObject",
        "Remove-AzureAdKerberosServer",
    ]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Exception calling LsaCreateTrustedDomainEx: 0x549", "forest root domain"),
        ("Collision setting top level names on trust KERBEROS.MICROSOFTONLINE.COM", "Another trust already routes"),
        ("kerberos-bot: module AzureADHybridAuthenticationManagement 1.0.3 is older than the required 2.0.0", "older"),
        ("kerberos-bot: module AzureADHybridAuthenticationManagement is not installed", "not installed"),
        ("AADSTS50076: Due to a configuration change ... you must use multi-factor authentication", "AADSTS50076"),
    ],
)
async def test_error_stream_becomes_an_actionable_message(
    host: tuple[FakeWinRM, int], error: str, expected: str
) -> None:
    state, port = host
    state.answer = lambda _: Answer(errors=(error,))
    with pytest.raises(KerberosModuleError) as caught:
        await runner(port).set_server("contoso.com", SetServerOptions(setup_cloud_trust=True))
    assert expected in caught.value.user_message
    assert caught.value.user_message.startswith("Set-AzureADKerberosServer failed")


async def test_version_message_names_both_versions(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(
        errors=("kerberos-bot: module AzureADHybridAuthenticationManagement 1.0.3 is older than the required 2.1",)
    )
    with pytest.raises(KerberosModuleError, match=r"installed 1\.0\.3, required 2\.1"):
        await runner(port).get_server("contoso.com")


async def test_wrong_remoting_password(host: tuple[FakeWinRM, int]) -> None:
    _, port = host
    with pytest.raises(KerberosModuleError, match="refused the credentials of svc-kerberos-bot") as caught:
        await runner(port, password="not-the-password").get_server("contoso.com")
    assert "not-the-password" not in caught.value.user_message


async def test_nothing_listening() -> None:
    with pytest.raises(KerberosModuleError, match=r"Cannot connect to the management host 127\.0\.0\.1:\d+"):
        await runner(free_port()).get_server("contoso.com")


async def test_secrets_rotated_at_their_source_are_used_from_the_next_call(
    host: tuple[FakeWinRM, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    source: dict[str, Any] = {"password": REMOTING_PASSWORD, "credentials": CREDENTIALS, "readable": True}

    def read_again() -> RemotingSecrets:
        if not source["readable"]:
            raise ConfigurationError("kerberos_module.remoting.password: cannot read secret file /run/secrets/winrm")
        return RemotingSecrets(source["password"], source["credentials"])

    module = runner(port, secrets_again=read_again, secrets_every=0)
    await module.get_server("contoso.com")
    # rotated at the source and on the host: the old password is refused from now on
    rotated = ModuleCredentials(
        CREDENTIALS.domain_user, "Domain-R0tated-pw", CREDENTIALS.cloud_user, "Cloud-R0tated-pw"
    )
    source.update(password="Rotated-Passw0rd!", credentials=rotated)
    state.password = "Rotated-Passw0rd!"
    with caplog.at_level(logging.DEBUG):
        await module.get_server("contoso.com")
        assert state.pipelines[-1].parameters["DomainCredential"] == (rotated.domain_user, rotated.domain_password)
        assert state.pipelines[-1].parameters["CloudCredential"] == (rotated.cloud_user, rotated.cloud_password)
        # a source that cannot be read keeps the secrets in use, and says so
        source["readable"] = False
        await module.get_server("contoso.com")
    assert "changed at their source" in caplog.text and "could not read the secrets" in caplog.text
    assert not any(s in caplog.text for s in ("Rotated-Passw0rd!", "Domain-R0tated-pw", "Cloud-R0tated-pw"))


def test_secrets_are_read_again_only_where_their_source_can_change(tmp_path: Path) -> None:
    password_file = tmp_path / "winrm-password"
    password_file.write_text(REMOTING_PASSWORD)
    from_file = remoting_config(5986, password={"file": str(password_file)}, reread_secrets_minutes=0)
    assert build_remoting(from_file).rereads_secrets
    assert not build_remoting(remoting_config(5986)).rereads_secrets  # inline (the sandbox's) values only


async def test_a_call_past_its_deadline_is_stopped(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,), running_receives=1000, delay_seconds=0.2)
    module = runner(port, timeouts=Timeouts(read=1.5, change=2.0, poll=1.0))
    with pytest.raises(KerberosModuleError, match=r"did not finish within 2 s on 127\.0\.0\.1 and was stopped"):
        await module.set_server("contoso.com", SetServerOptions(rotate_server_key=True))
    assert "Signal" in state.actions  # the host was told to stop the pipeline
    assert state.actions[-1] == "Delete"


async def test_one_call_at_a_time_per_host_by_default(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,), delay_seconds=0.3)
    serial = runner(port)
    await asyncio.gather(*(serial.get_server("contoso.com") for _ in range(3)))
    assert state.max_running == 1

    state.max_running = 0
    parallel = runner(port, concurrency=3)
    await asyncio.gather(*(parallel.get_server("contoso.com") for _ in range(3)))
    assert state.max_running == 3


async def test_no_password_in_any_log_record_at_debug(
    host: tuple[FakeWinRM, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    caplog.set_level(logging.DEBUG)
    module = runner(port)
    await module.get_server("contoso.com")
    await module.set_server("contoso.com", SetServerOptions(rotate_server_key=True))
    with pytest.raises(KerberosModuleError):
        await runner(port, password="Wrong-Remoting-pw").get_server("contoso.com")

    sent = state.pipelines[0].parameters  # they did travel, as bound parameters
    assert sent["DomainCredential"][1] == CREDENTIALS.domain_password
    assert sent["CloudCredential"][1] == CREDENTIALS.cloud_password
    assert caplog.records
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (*SECRETS, "Wrong-Remoting-pw"):
        assert secret not in logged


async def test_even_pypsrp_at_debug_sees_only_ciphertext(
    host: tuple[FakeWinRM, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Second layer: were the pinning undone, pypsrp's DEBUG dumps of every message hold no password,
    because the passwords are SecureStrings encrypted with the session key."""
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    module = runner(port)
    pypsrp_log = logging.getLogger("pypsrp")
    pypsrp_log.setLevel(logging.DEBUG)
    try:
        caplog.set_level(logging.DEBUG)
        await module.get_server("contoso.com")
    finally:
        pypsrp_log.setLevel(logging.WARNING)
    dumped = [r.getMessage() for r in caplog.records if r.name.startswith("pypsrp")]
    assert any("Packing PSRP message" in m and CREDENTIALS.cloud_user in m for m in dumped)  # it does dump them
    assert not any(secret in m for m in dumped for secret in (CREDENTIALS.domain_password, CREDENTIALS.cloud_password))
    wire = b"".join(state.bodies)
    for secret in (CREDENTIALS.domain_password, CREDENTIALS.cloud_password):
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in wire
            assert all(secret.encode(encoding) not in chunk for chunk in _base64_payloads(wire))


def _base64_payloads(wire: bytes) -> list[bytes]:
    """The PSRP fragments inside the SOAP bodies (creationXml, Arguments, Stream)."""
    return [base64.b64decode(m) for m in re.findall(rb">([A-Za-z0-9+/=]{40,})<", wire)]


# -- kerberos-bot check ---------------------------------------------------------------------------------


def remoting_config(port: int, **changes: object) -> RemotingConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "auth": "ntlm",
        "username": "svc-kerberos-bot",
        "password": {"value": REMOTING_PASSWORD},
        "domain_credential": {"user": CREDENTIALS.domain_user, "password": {"value": CREDENTIALS.domain_password}},
        "cloud_credential": {"user": CREDENTIALS.cloud_user, "password": {"value": CREDENTIALS.cloud_password}},
        "min_module_version": "2.1.0",
    }
    values.update(changes)
    return RemotingConfig.model_validate(values)


def module_answer(version: str | None) -> Answer:
    return Answer(output=(json.dumps({"Version": version, "PowerShell": "5.1.20348.2849", "Computer": "MGMT01"}),))


def answering(version: str | None) -> object:
    def answer(pipeline: ReceivedPipeline) -> Answer:
        assert pipeline.script == MODULE_SCRIPT and pipeline.parameters == {}
        return module_answer(version)

    return answer


@pytest.mark.parametrize(
    ("version", "host_ok", "module_ok", "detail"),
    [
        ("2.1.3", True, True, "AzureADHybridAuthenticationManagement 2.1.3 (at least 2.1.0)"),
        ("2.0.9", True, False, "2.0.9 is older than min_module_version 2.1.0"),
        (None, True, False, "AzureADHybridAuthenticationManagement is not installed"),
    ],
)
async def test_check_reports_the_host_and_the_module(
    host: tuple[FakeWinRM, int], version: str | None, host_ok: bool, module_ok: bool, detail: str
) -> None:
    state, port = host
    state.answer = answering(version)  # type: ignore[assignment]
    reached, module = await check_remoting(remoting_config(port), build=lambda _: runner(port))
    assert reached.ok is host_ok and "MGMT01, PowerShell 5.1.20348.2849" in reached.detail
    assert module.ok is module_ok and detail in module.detail
    if not module_ok:
        assert "Module AzureADHybridAuthenticationManagement" in module.fix


async def test_check_names_an_unreachable_host_and_refused_credentials(host: tuple[FakeWinRM, int]) -> None:
    _, port = host
    down_port = free_port()
    down = await check_remoting(remoting_config(down_port), build=lambda _: runner(down_port))
    assert not down[0].ok and "Cannot connect" in down[0].detail and not down[1].ok

    refused = await check_remoting(remoting_config(port), build=lambda _: runner(port, password="nope-nope"))
    assert not refused[0].ok and "refused the credentials" in refused[0].detail
    assert all("nope-nope" not in r.line() for r in refused)


async def test_check_names_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KB_TEST_WINRM_PASSWORD", raising=False)
    config = remoting_config(5986, password={"env": "KB_TEST_WINRM_PASSWORD"})
    [line] = await check_remoting(config)
    assert not line.ok and "KB_TEST_WINRM_PASSWORD" in line.detail


# -- the production path: HTTPS with CA validation, NTLM with channel binding, built from the configuration ---


@pytest.fixture
def ca_file(tmp_path: Path) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path / "winrm-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


NTLM_USER = "CONTOSO\\svc-kerberos-bot"


def https_config(port: int, ca: Path, **changes: object) -> RemotingConfig:
    return remoting_config(port, ssl=True, auth="ntlm", username=NTLM_USER, cert_validation=str(ca), **changes)


async def test_https_ntlm_from_the_configuration(ca_file: tuple[trustme.CA, Path], tmp_path: Path) -> None:
    ca, path = ca_file
    with fake_winrm(NTLM_USER, REMOTING_PASSWORD, tls=ca, ntlm=True, work_dir=tmp_path) as (state, port):
        state.answer = lambda _: Answer(output=(SAMPLE,))
        module = build_remoting(https_config(port, path))
        report = await module.get_server("contoso.com")
        assert report.cloud_id == 25614
        assert state.authenticated_as == [NTLM_USER]  # one connection, authenticated once, channel-bound
        assert state.pipelines[0].parameters["CloudCredential"][1] == CREDENTIALS.cloud_password

        state.answer = answering("2.4.0")  # type: ignore[assignment]
        reached, on_host = await check_remoting(https_config(port, path))
        assert reached.ok and "(ntlm, HTTPS on)" in reached.detail and on_host.ok


async def test_https_with_an_untrusted_certificate(ca_file: tuple[trustme.CA, Path], tmp_path: Path) -> None:
    ca, _ = ca_file
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with fake_winrm(NTLM_USER, REMOTING_PASSWORD, tls=ca, ntlm=True, work_dir=tmp_path) as (state, port):
        with pytest.raises(KerberosModuleError, match=r"TLS with the management host 127\.0\.0\.1:\d+ failed"):
            await build_remoting(https_config(port, other)).get_server("contoso.com")
        assert state.actions == []  # nothing reached WinRM, so no credential left the bot


async def test_https_ntlm_wrong_password(ca_file: tuple[trustme.CA, Path], tmp_path: Path) -> None:
    ca, path = ca_file
    with fake_winrm(NTLM_USER, REMOTING_PASSWORD, tls=ca, ntlm=True, work_dir=tmp_path) as (state, port):
        config = https_config(port, path, password={"value": "Not-the-Passw0rd"})
        reached, _ = await check_remoting(config)
        assert not reached.ok and f"refused the credentials of {NTLM_USER} (ntlm)" in reached.detail
        assert state.actions == [] and "Not-the-Passw0rd" not in reached.line()


async def test_a_cancelled_caller_keeps_the_slot_until_the_host_call_ends(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,), delay_seconds=0.6)
    module = runner(port)
    first = asyncio.create_task(module.set_server("contoso.com", SetServerOptions(rotate_server_key=True)))
    await until(lambda: state.pipelines, what="the rotation running on the host")
    first.cancel()
    second = asyncio.create_task(module.get_server("contoso.com"))
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert state.max_running == 1 and len(state.pipelines) == 2


def read_back_fails(then: Answer) -> object:
    def answer(pipeline: ReceivedPipeline) -> Answer:
        if pipeline.parameters["Cmdlet"] == "Set-AzureADKerberosServer":
            return Answer(output=(json.dumps({"KerberosBotReadBackFailed": "The RPC server is unavailable"}),))
        return then

    return answer


async def test_a_failed_read_back_after_a_change_is_retried(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = read_back_fails(Answer(output=(SAMPLE,)))  # type: ignore[assignment]
    report = await runner(port).set_server("contoso.com", SetServerOptions(rotate_server_key=True))
    assert report.key_version == 53325
    assert [p.parameters["Cmdlet"] for p in state.pipelines] == [
        "Set-AzureADKerberosServer",
        "Get-AzureAdKerberosServer",
    ]


async def test_a_change_whose_result_cannot_be_read_says_it_ran(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = read_back_fails(Answer(errors=("AADSTS50126: Error validating credentials",)))  # type: ignore[assignment]
    with pytest.raises(KerberosModuleError) as caught:
        await runner(port).set_server("contoso.com", SetServerOptions(rotate_server_key=True))
    message = caught.value.user_message
    assert message.startswith("Set-AzureADKerberosServer ran on 127.0.0.1, but reading the result back failed")
    assert "AADSTS50126" in message and hint("status") in message  # the command, as each surface spells it


async def test_a_change_that_ran_is_not_failed_by_the_clean_up(
    host: tuple[FakeWinRM, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    state.fail_delete = True
    report = await runner(port).set_server("contoso.com", SetServerOptions(rotate_server_key=True))
    assert report.key_version == 53325 and state.actions[-1] == "Delete"
    assert any("closing the session on 127.0.0.1 failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("code", ["AADSTS50076", "AADSTS50079", "AADSTS50158", "AADSTS53003"])
async def test_check_reads_as_a_change_will_and_names_an_mfa_prompt_of_the_cloud_credential(
    host: tuple[FakeWinRM, int], code: str
) -> None:
    state, port = host

    def answer(pipeline: ReceivedPipeline) -> Answer:
        if pipeline.script == MODULE_SCRIPT:
            return module_answer("2.1.3")
        assert pipeline.parameters["Cmdlet"] == "Get-AzureAdKerberosServer"
        assert pipeline.parameters["CloudCredential"] == (CREDENTIALS.cloud_user, CREDENTIALS.cloud_password)
        return Answer(errors=(f"{code}: Due to a configuration change made by your administrator, you must use "
                              "multi-factor authentication to access this resource.",))  # fmt: skip

    state.answer = answer
    reached, module, cloud = await check_remoting(
        remoting_config(port), build=lambda _: runner(port), read_domain="contoso.com"
    )
    assert reached.ok and module.ok and not cloud.ok
    assert CREDENTIALS.cloud_user in cloud.detail and "cannot answer an MFA prompt" in cloud.detail
    assert code in cloud.detail and "The cloud credential and MFA" in cloud.fix
    assert all(secret not in cloud.line() for secret in SECRETS)


async def test_check_says_the_cloud_credential_signed_in(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda p: module_answer("2.1.3") if p.script == MODULE_SCRIPT else Answer(output=(SAMPLE,))
    *_, cloud = await check_remoting(remoting_config(port), build=lambda _: runner(port), read_domain="contoso.com")
    assert cloud.ok and "signed in to Entra ID as kerb-hia@contoso.com, as a change will" in cloud.detail


async def test_a_change_refused_for_mfa_after_approval_says_the_same(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(errors=("AADSTS53003: Access has been blocked by Conditional Access policies.",))
    with pytest.raises(KerberosModuleError, match="cannot answer an MFA prompt.*AADSTS53003"):
        await runner(port).set_server("contoso.com", SetServerOptions(rotate_server_key=True))


# -- JEA mode: the deploy/jea endpoint's fixed functions, no credential sent ----------------------------------
def jea_runner(port: int) -> RemotingKerberosModule:
    target = RemotingTarget(
        "127.0.0.1",
        "svc-kerberos-bot",
        REMOTING_PASSWORD,
        port=port,
        ssl=False,
        auth="basic",
        encryption="never",
        configuration_name="KerberosBot",
    )
    return RemotingKerberosModule(target, None, endpoint=2)


async def test_jea_mode_calls_the_endpoints_functions_and_sends_no_credential(host: tuple[FakeWinRM, int]) -> None:
    state, port = host
    state.answer = lambda _: Answer(output=(SAMPLE,))
    report = await jea_runner(port).get_server(HOSTILE)
    assert report.cloud_key_version == 53325
    [read] = state.pipelines
    assert not read.is_script and read.script == "Get-KerberosBotServer"
    assert read.parameters == {"Domain": HOSTILE, "Endpoint": 2}  # no credential, no script
    assert state.resource_uris[-1].endswith("/KerberosBot")
    options = SetServerOptions(
        rotate_server_key=True, force=True, setup_cloud_trust=True, top_level_names=["windows.net"]
    )
    await jea_runner(port).set_server("contoso.com", options)
    change = state.pipelines[-1]
    assert not change.is_script and change.script == "Set-KerberosBotServer"
    assert change.parameters == {
        "Domain": "contoso.com",
        "TopLevelNames": "windows.net",
        "SetupCloudTrust": True,
        "RotateServerKey": True,
        "Force": True,
        "Endpoint": 2,
    }
    assert all(secret.encode() not in body for body in state.bodies for secret in SECRETS[1:])


async def test_check_names_the_jea_mode(host: tuple[FakeWinRM, int]) -> None:
    state, port = host

    def answer(pipeline: ReceivedPipeline) -> Answer:
        if pipeline.script == "Get-KerberosBotModuleInfo":
            return module_answer("2.1.3")
        return Answer(output=(SAMPLE,))

    state.answer = answer
    config = remoting_config(
        port, mode="jea", configuration_name="KerberosBot", domain_credential=None, cloud_credential=None
    )
    reached, module, cloud = await check_remoting(config, build=lambda _: jea_runner(port), read_domain="contoso.com")
    assert reached.ok and "JEA endpoint KerberosBot: fixed functions, no credential sent" in reached.detail
    assert module.ok and cloud.ok and "the cloud credential the JEA endpoint keeps" in cloud.detail
    assert [p.script for p in state.pipelines] == ["Get-KerberosBotModuleInfo", "Get-KerberosBotServer"]
