"""The remoting runner without a host: the pipeline it would send, its error mapping, its configuration."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pypsrp.complex_objects import ApartmentState, HostInfo, Pipeline, RemoteStreamOptions
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.messages import CreatePipeline, Destination, Message
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan
from spnego import KerberosKeytab

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.adapters.kerberos_module.remoting.calls import (
    RUN_SCRIPT,
    ModuleCredentials,
    RemotingTarget,
    ScriptCall,
    add_call,
    runspaces_for,
    script_call,
)
from bot.adapters.kerberos_module.remoting.failures import transport_failure
from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule
from bot.adapters.kerberos_module.remoting.winrm_kerberos import KerberosClient, kerberos_failure, use_krb5_config
from bot.bootstrap.module import build_remoting
from bot.config import KerberosModuleConfig, RemotingConfig, load_bot_config
from bot.domain.errors import ConfigurationError, KerberosModuleError
from bot.domain.ports import SetServerOptions
from bot.entrypoints.check import check_remoting

ROOT = Path(__file__).parents[2]


def transport_failure_of(
    runner: RemotingKerberosModule, exc: Exception, call: ScriptCall, timeout: float
) -> KerberosModuleError:
    return transport_failure(exc, runner.target, call, timeout)


EXAMPLE = ROOT / "examples" / "kerberos-bot.toml"
HOSTILE = 'contoso.com\'; Remove-AzureAdKerberosServer -Domain contoso.com; "$(Stop-Computer)" #'
CREDENTIALS = ModuleCredentials("CONTOSO\\da", "Dom-pw-1", "hia@contoso.com", "Cloud-pw-1")


def pipeline_xml(call: ScriptCall) -> ET.Element:
    """The CREATE_PIPELINE message pypsrp would send for this call, as the host receives it.

    SecureStrings need a session key; a fixed one stands in for the key the pool would exchange."""
    pool = RunspacePool(WSMan("mgmt01.contoso.com", username="u", password="p"))
    pool.protocol_version = "2.3"  # normally learnt when the pool opens
    shell = add_call(PowerShell(pool), call)
    create = CreatePipeline(
        True,
        ApartmentState(value=pool.apartment_state),
        RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO),
        False,
        HostInfo(host=None),
        Pipeline(is_nested=False, cmds=shell.commands, history=None, redirect_err_to_out=False),
        False,
    )
    serializer = Serializer()
    serializer.cipher = Cipher(algorithms.AES(b"k" * 32), modes.CBC(b"\x00" * 16))
    packed = Message(Destination.SERVER, pool.id, shell.id, create, serializer).pack()
    return ET.fromstring(packed[40:].decode("utf-8"))


def test_hostile_domain_is_only_ever_a_parameter_value() -> None:
    call = script_call(
        ps.set_server(HOSTILE, SetServerOptions(setup_cloud_trust=True, top_level_names=["a.net", HOSTILE])),
        CREDENTIALS,
        min_module_version="2.0.0",
        endpoint=None,
    )
    assert call.script is RUN_SCRIPT and HOSTILE not in call.label
    xml = pipeline_xml(call)
    [command] = xml.findall("./MS/Obj[@N='PowerShell']/MS/Obj[@N='Cmds']/LST/Obj")
    cmd = command.find("MS/S[@N='Cmd']")
    assert cmd is not None
    script = Serializer().deserialize(cmd)
    assert script == RUN_SCRIPT and command.findtext("MS/B[@N='IsScript']") == "true"

    # every occurrence of the hostile text sits inside a bound argument's value
    args = command.find("MS/Obj[@N='Args']")
    assert args is not None
    inside_args = {id(e) for e in args.iter()}
    carrying = [e for e in xml.iter() if e.text and "Remove-AzureAdKerberosServer -Domain" in e.text]
    assert len(carrying) == 2 and all(id(e) in inside_args for e in carrying)
    names = [e.text for e in args.findall("LST/Obj/MS/S[@N='N']")]
    assert names == ["Cmdlet", "Parameters", "Switches", "MinimumVersion", "Report", *CREDENTIAL_NAMES]


CREDENTIAL_NAMES = ["DomainCredential", "CloudCredential"]


def test_passwords_travel_only_as_secure_strings() -> None:
    call = script_call(ps.get_server("contoso.com"), CREDENTIALS, min_module_version="2.0.0", endpoint=None)
    assert call.has_secrets and "Dom-pw-1" not in repr(call)
    xml = pipeline_xml(call)
    text = ET.tostring(xml, encoding="unicode")
    assert "Dom-pw-1" not in text and "Cloud-pw-1" not in text
    users = [e.text for e in xml.iter("S") if e.attrib.get("N") == "UserName"]
    assert users == ["CONTOSO\\da", "hia@contoso.com"]
    assert len([e for e in xml.iter("SS") if e.attrib.get("N") == "Password"]) == 2
    assert "ConvertTo-SecureString" not in RUN_SCRIPT and "AsPlainText" not in RUN_SCRIPT


def test_values_are_typed_parameters() -> None:
    call = script_call(
        ps.set_server("contoso.com", SetServerOptions(rotate_server_key=True, force=True)),
        CREDENTIALS,
        min_module_version="2.1",
        endpoint=2,
        report=True,
    )
    assert call.parameters["Parameters"] == {"Domain": "contoso.com"}
    assert call.parameters["Switches"] == ["RotateServerKey", "Force"]
    assert call.parameters["Endpoint"] == 2 and call.parameters["Report"] is True
    cloud = call.parameters["CloudCredential"]
    assert (cloud.username, cloud.password) == ("hia@contoso.com", "Cloud-pw-1")
    assert call.label == "Set-AzureADKerberosServer -Domain <Domain> -RotateServerKey -Force"


def test_the_script_never_formats_values_in() -> None:
    # no Python format fields, and every value the script reads is declared in its param() block
    assert re.search(r"\{[a-z_]+\}", RUN_SCRIPT) is None
    declared = set(re.findall(r"\[[\w\[\]]+\]\$(\w+)", RUN_SCRIPT.split(")\n$ErrorActionPreference")[0]))
    assert {"Cmdlet", "Parameters", "Switches", "Endpoint"} <= declared
    assert "[System.Management.Automation.PSCredential]$DomainCredential" in RUN_SCRIPT
    assert "Invoke-Expression" not in RUN_SCRIPT and "iex " not in RUN_SCRIPT.lower()


def test_credentials_hidden_from_repr() -> None:
    target = RemotingTarget("mgmt01", "svc", "Remote-pw-1")
    assert "Remote-pw-1" not in repr(target) and "Dom-pw-1" not in repr(CREDENTIALS)
    assert "Cloud-pw-1" not in repr(CREDENTIALS)


# -- transport errors ------------------------------------------------------------------------------------


def module() -> RemotingKerberosModule:
    return RemotingKerberosModule(RemotingTarget("mgmt01.contoso.com", "svc-kb", "pw", auth="ntlm"), CREDENTIALS)


CALL = ScriptCall(RUN_SCRIPT, {}, "Set-AzureADKerberosServer -Domain <Domain> -RotateServerKey")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.exceptions.SSLError("certificate verify failed"), "TLS with the management host mgmt01.contoso.com"),
        (requests.exceptions.ConnectTimeout("x"), "did not accept a connection within 10 s"),
        (requests.exceptions.ReadTimeout("x"), "stopped answering during Set-AzureADKerberosServer"),
        (requests.exceptions.ConnectionError("refused"), "Cannot connect to the management host mgmt01"),
        (AuthenticationError("Failed to authenticate the user svc-kb with ntlm"), "refused the credentials of svc-kb"),
        (WSManFaultError(5, "mgmt01", "Access is denied.", None, None, None), "Remote Management Users"),
        (WSManFaultError(2150858843, "m", "The request is invalid", None, None, None), "fault (2150858843)"),
        (
            WSManFaultError(
                2150859193, "m", "The WSMan provider host process did not return a proper response.", None, None, None
            ),
            "ran out of memory: WinRM ends a shell that passes its memory quota (MaxMemoryPerShellMB",
        ),
        (WinRMTransportError("http", 404, ""), "answered HTTP 404"),
        (ValueError("spnego said no"), "during authentication or transport (ValueError)"),
    ],
)
def test_transport_errors_name_the_host_and_the_fix(exc: Exception, expected: str) -> None:
    error = transport_failure_of(module(), exc, CALL, 180)
    assert isinstance(error, KerberosModuleError)
    assert expected in error.user_message
    assert "mgmt01.contoso.com" in error.user_message


def test_transport_error_messages_are_distinct() -> None:
    kinds: list[Exception] = [
        requests.exceptions.SSLError(),
        requests.exceptions.ConnectTimeout(),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectionError(),
        AuthenticationError(),
        WSManFaultError(5, None, "Access is denied.", None, None, None),
        WinRMTransportError("http", 500, ""),
    ]
    messages = {transport_failure_of(module(), e, CALL, 180).user_message for e in kinds}
    assert len(messages) == len(kinds)


def test_module_version_failures_from_the_script() -> None:
    older = ps.translate_failure(
        "Get-AzureAdKerberosServer",
        "kerberos-bot: module AzureADHybridAuthenticationManagement 1.0.1 is older than the required 2.0.0",
    )
    assert "older than the configured min_module_version" in older.user_message
    assert "installed 1.0.1, required 2.0.0" in older.user_message
    missing = ps.translate_failure(
        "Get-AzureAdKerberosServer", "kerberos-bot: module AzureADHybridAuthenticationManagement is not installed"
    )
    assert "not installed on the management host" in missing.user_message


# -- configuration -----------------------------------------------------------------------------------------


def remoting(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "host": "mgmt01.contoso.com",
        "username": "CONTOSO\\svc-kerberos-bot",
        "password": {"env": "KB_WINRM_PASSWORD"},
        "domain_credential": {"user": "CONTOSO\\svc-kerb-da", "password": {"env": "KB_DOMAIN_PASSWORD"}},
        "cloud_credential": {"user": "kerb-hia@contoso.com", "password": {"file": "/run/secrets/cloud"}},
    }
    values.update(changes)
    return values


def test_remoting_defaults() -> None:
    config = RemotingConfig.model_validate(remoting())
    assert (config.port, config.ssl, config.cert_validation, config.auth) == (5986, True, True, "negotiate")
    assert config.concurrency == 1 and config.change_timeout_seconds == 180 and config.endpoint is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cert_validation": False}, "give the CA bundle"),
        ({"cert_validation": "/nonexistent/ca.pem"}, "CA bundle /nonexistent/ca.pem does not exist"),
        ({"auth": "ntlm", "password": None}, "auth 'ntlm' needs username and password"),
        ({"auth": "credssp"}, "auth 'credssp' delegates the bot's password"),
        ({"username": None}, "password without username"),
        ({"auth": "kerberos"}, "is NTLM's DOMAIN\\user form: Kerberos needs the principal"),
        ({"password": None, "keytab": __file__}, "is NTLM's DOMAIN\\user form: Kerberos needs the principal"),
        ({"username": "svc@contoso.com"}, "realms are case-sensitive and AD's are in capitals: svc@CONTOSO.COM"),
        ({"auth": "kerberos", "username": "svc@CONTOSO.COM", "keytab": __file__}, "either password or keytab"),
        ({"keytab": "/nonexistent/bot.keytab", "password": None}, "/nonexistent/bot.keytab does not exist"),
        ({"krb5_conf": "/nonexistent/krb5.conf"}, "/nonexistent/krb5.conf does not exist"),
        ({"auth": "ntlm", "spn_hostname": "mgmt01"}, "spn_hostname only apply to auth 'kerberos' or 'negotiate'"),
        ({"auth": "ntlm", "krb5_conf": __file__}, "krb5_conf only apply to auth 'kerberos' or 'negotiate'"),
        ({"auth": "kerberos", "username": None, "password": None, "spn_service": ""}, "spn_service"),
        ({"auth": "basic"}, "auth"),
        ({"min_module_version": "latest"}, "'latest' is not a module version"),
        ({"endpoint": 3}, "endpoint"),
        ({"concurrency": 0}, "concurrency"),
        ({"read_timeout_seconds": 300}, "change_timeout_seconds must not be shorter"),
        ({"ssl": False}, "ssl = false with auth 'negotiate' would protect the credentials with NTLM's RC4"),
    ],
)
def test_remoting_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RemotingConfig.model_validate(remoting(**changes))


def test_kerberos_with_a_ticket_cache_needs_no_password() -> None:
    config = RemotingConfig.model_validate(remoting(auth="kerberos", username=None, password=None))
    assert config.username is None and config.spn_service == "HTTP" and config.keytab is None
    # not with negotiate: where Kerberos is configured, its silent fallback to NTLM is refused
    for changes in ({"username": "svc@CONTOSO.COM", "password": None}, {"username": None, "password": None}):
        with pytest.raises(ValueError, match="falls back to NTLM silently"):
            RemotingConfig.model_validate(remoting(**changes))


def test_kerberos_with_a_keytab_and_an_spn_override(tmp_path: Path) -> None:
    keytab, conf = tmp_path / "bot.keytab", tmp_path / "krb5.conf"
    keytab.write_bytes(b"\x05\x02")
    conf.write_text("[libdefaults]\n")
    config = RemotingConfig.model_validate(
        remoting(
            host="10.0.0.5",
            auth="kerberos",
            username="svc@CONTOSO.COM",
            password=None,
            keytab=str(keytab),
            spn_hostname="mgmt01.contoso.com",
            krb5_conf=str(conf),
            domain_credential={"user": "CONTOSO\\svc-kerb-da", "password": {"value": "d"}},
            cloud_credential={"user": "kerb-hia@contoso.com", "password": {"value": "c"}},
        )
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KRB5_CONFIG", str(conf))  # what build_remoting sets, restored after
        runner = build_remoting(config)
    target = runner.target
    assert target.keytab == str(keytab) and target.password is None
    assert target.kerberos.spn == "HTTP/mgmt01.contoso.com" and target.kerberos.source == "keytab"
    user, password = target.credential()
    assert user == KerberosKeytab(keytab=str(keytab), principal="svc@CONTOSO.COM") and password is None
    wsman = runner._wsman(30)
    transport = wsman.transport
    assert (transport.negotiate_service, transport.negotiate_hostname_override) == ("HTTP", "mgmt01.contoso.com")  # type: ignore[attr-defined]


def test_krb5_conf_sets_krb5_config_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf, other = tmp_path / "krb5.conf", tmp_path / "other.conf"
    conf.write_text("[libdefaults]\n")
    monkeypatch.delenv("KRB5_CONFIG", raising=False)
    use_krb5_config(conf)
    assert os.environ["KRB5_CONFIG"] == str(conf)
    use_krb5_config(conf)  # the same file again: fine
    with pytest.raises(ConfigurationError, match=r"the environment's KRB5_CONFIG names .*keep one of them"):
        use_krb5_config(other)
    assert os.environ["KRB5_CONFIG"] == str(conf)


KRB = KerberosClient(host="mgmt01.contoso.com", principal="svc@CONTOSO.COM", with_password=True)


def kerberos_module(**target: object) -> RemotingKerberosModule:
    values: dict[str, object] = {"username": "svc@CONTOSO.COM", "password": "pw", "auth": "kerberos"}
    values.update(target)
    return RemotingKerberosModule(RemotingTarget("mgmt01.contoso.com", **values), CREDENTIALS)  # type: ignore[arg-type]


class FakeKrb5Error(Exception):
    """krb5.Krb5Error's shape: the message and MIT's (signed) error code."""

    def __init__(self, message: str, err_code: int) -> None:
        super().__init__(message)
        self.err_code = err_code


class FakeGSSError(Exception):
    """gssapi's GSSError's shape: an unsigned minor code."""

    def __init__(self, message: str, min_code: int) -> None:
        super().__init__(message)
        self.min_code = min_code


def wrapped(inner: Exception) -> Exception:
    """spnego's SpnegoError with the GSS error as its cause, as pyspnego raises it."""
    try:
        raise inner
    except Exception as exc:
        outer = RuntimeError("SpnegoError (4294967295): Unspecified GSS failure")
        outer.__cause__ = exc
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            FakeKrb5Error("Cannot contact any KDC for realm 'CONTOSO.COM'", -1765328228),
            "no KDC of CONTOSO.COM answered",
        ),
        (FakeKrb5Error('Cannot find KDC for realm "CONTOSO.COM"', -1765328230), "krb5.conf names no KDC for"),
        (FakeKrb5Error("Clock skew too great", -1765328347), "differ by more than 5 minutes"),
        (FakeKrb5Error("Preauthentication failed", -1765328360), "refused the password of svc@CONTOSO.COM"),
        (
            wrapped(FakeGSSError("Server not found in Kerberos database", 2529638919)),
            "no service principal HTTP/mgmt01",
        ),
        (FakeKrb5Error("Client 'svc@CONTOSO.COM' not found in Kerberos database", -1765328378), "does not know"),
        (FakeKrb5Error("Client's credentials have been revoked", -1765328366), "disabled or locked out"),
        (FakeKrb5Error("Password has expired", -1765328361), "has expired: set a new one"),
        (wrapped(FakeGSSError("No Kerberos credentials available (default cache: FILE:/tmp/x)", 2529639053)), "kinit"),
        (wrapped(FakeGSSError("Ticket expired", 2529638944)), "ticket in the cache has expired"),
    ],
)
def test_kerberos_failures_name_the_host_and_the_fix(exc: Exception, expected: str) -> None:
    error = transport_failure_of(kerberos_module(), exc, CALL, 180)
    assert expected in error.user_message
    assert error.user_message.startswith("Kerberos to the management host mgmt01.contoso.com:5986 failed")


def test_kerberos_failure_messages_are_distinct() -> None:
    kinds = [-1765328228, -1765328230, -1765328347, -1765328360, -1765328377, -1765328378, -1765328366]
    messages = {kerberos_failure(FakeKrb5Error("x", code), KRB, "h:5986") for code in kinds}
    assert None not in messages and len(messages) == len(kinds)
    assert kerberos_failure(ValueError("spnego said no"), KRB, "h:5986") is None


def test_keytab_and_spn_override_shape_the_messages() -> None:
    keytab = kerberos_module(password=None, keytab="/etc/kb/bot.keytab", spn_hostname="mgmt01.corp.contoso.com")
    refused = transport_failure_of(keytab, FakeKrb5Error("Preauthentication failed", -1765328360), CALL, 180)
    assert "refused the key in /etc/kb/bot.keytab for svc@CONTOSO.COM" in refused.user_message
    unknown = transport_failure_of(keytab, wrapped(FakeGSSError("x", 2529638919)), CALL, 180)
    assert "HTTP/mgmt01.corp.contoso.com" in unknown.user_message
    ticket = transport_failure_of(keytab, AuthenticationError("401"), CALL, 180)
    assert "refused the Kerberos ticket for HTTP/mgmt01.corp.contoso.com" in ticket.user_message


def test_kind_and_table_must_agree() -> None:
    with pytest.raises(ValueError, match=r"kind 'remoting' needs a \[kerberos_module.remoting\] table"):
        KerberosModuleConfig.model_validate({"kind": "remoting"})
    with pytest.raises(ValueError, match="table is set but kind is 'emulator'"):
        KerberosModuleConfig.model_validate(
            {"kind": "emulator", "emulator": {"cloud_url": "https://x"}, "remoting": remoting()}
        )


def test_bootstrap_resolves_the_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = tmp_path / "cloud"
    cloud.write_text("Cloud-from-file\n")
    monkeypatch.setenv("KB_WINRM_PASSWORD", "Winrm-from-env")
    monkeypatch.setenv("KB_DOMAIN_PASSWORD", "Domain-from-env")
    config = RemotingConfig.model_validate(
        remoting(
            cloud_credential={"user": "kerb-hia@contoso.com", "password": {"file": str(cloud)}},
            cert_validation=str(cloud),  # any existing file stands in for the CA bundle
            endpoint=2,
            concurrency=2,
        )
    )
    runner = build_remoting(config)
    assert runner.target.password == "Winrm-from-env" and runner.target.cert_validation == str(cloud)
    credentials = runner._credentials
    assert credentials is not None
    assert credentials.domain_password == "Domain-from-env"
    assert credentials.cloud_password == "Cloud-from-file"
    assert runner.endpoint == 2 and runner.timeouts.change == 180

    monkeypatch.delenv("KB_DOMAIN_PASSWORD")
    with pytest.raises(ConfigurationError, match=r"kerberos_module.remoting.domain_credential.password"):
        build_remoting(config)


def remoting_snippet() -> str:
    """The [kerberos_module] TOML of docs/management-host.md."""
    doc = (ROOT / "docs" / "management-host.md").read_text()
    [snippet] = [block for block in re.findall(r"```toml\n(.*?)```", doc, re.S) if "[kerberos_module" in block]
    return str(snippet)


def test_documented_configuration_loads(tmp_path: Path) -> None:
    """The TOML in docs/management-host.md, put in place of the example's [kerberos_module] tables."""
    snippet = remoting_snippet()
    example = EXAMPLE.read_text()
    start = example.index("[kerberos_module]")
    end = example.index("[approvals]")
    path = tmp_path / "remoting.toml"
    path.write_text(example[:start] + snippet + "\n" + example[end:])
    config = load_bot_config(path)
    assert config.kerberos_module.kind == "remoting"
    assert config.kerberos_module.remoting is not None
    assert config.kerberos_module.remoting.host


def test_the_documented_operator_mode_configuration_loads(tmp_path: Path) -> None:
    """docs/management-host.md's operator-executes TOML, added to the example, gives the policy it says."""
    from bot.bootstrap.policy import operator_policy
    from bot.domain.approvals import Action

    doc = (ROOT / "docs" / "management-host.md").read_text()
    [snippet] = [block for block in re.findall(r"```toml\n(.*?)```", doc, re.S) if "[operators]" in block]
    path = tmp_path / "operators.toml"
    path.write_text(EXAMPLE.read_text() + "\n" + snippet)
    policy = operator_policy(load_bot_config(path))
    assert policy.actions == {Action.SETUP} and policy.groups == {"S0KERBOPS"}
    assert policy.time_limit.total_seconds() == 7200


async def test_check_names_a_krb5_config_conflict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "krb5.conf"
    conf.write_text("[libdefaults]\n")
    monkeypatch.setenv("KRB5_CONFIG", str(tmp_path / "elsewhere.conf"))
    config = RemotingConfig.model_validate(
        remoting(
            auth="kerberos",
            username="svc@CONTOSO.COM",
            password={"value": "pw"},
            krb5_conf=str(conf),
            domain_credential={"user": "CONTOSO\\svc-kerb-da", "password": {"value": "d"}},
            cloud_credential={"user": "kerb-hia@contoso.com", "password": {"value": "c"}},
        )
    )
    [line] = await check_remoting(config)
    assert not line.ok and "the environment's KRB5_CONFIG names" in line.detail and "keep one of them" in line.detail
    assert os.environ["KRB5_CONFIG"] == str(tmp_path / "elsewhere.conf")  # left as it was


@pytest.mark.parametrize(
    ("endpoint", "host"), [("", "login.microsoftonline.com"), ("endpoint = 2\n", "login.microsoftonline.us")]
)
def test_the_gpo_value_follows_the_modules_cloud_not_the_authority_host(
    tmp_path: Path, endpoint: str, host: str
) -> None:
    from bot.bootstrap.policy import kdc_proxy_setting

    remoting = re.sub(r"^endpoint = .*\n", "", remoting_snippet(), flags=re.M)
    remoting = remoting.replace("[kerberos_module.remoting]\n", "[kerberos_module.remoting]\n" + endpoint, 1)
    example = EXAMPLE.read_text()
    start, end = example.index("[kerberos_module]"), example.index("[approvals]")
    text = example[:start] + remoting + "\n" + example[end:]
    text = text.replace('authority_host = "https://login.microsoftonline.com"', 'authority_host = "https://proxy.test"')
    path = tmp_path / "c.toml"
    path.write_text(text)
    setting = kdc_proxy_setting(load_bot_config(path))
    assert setting.value == f"<https {host}:443:{setting.tenant_id}/kerberos />"


def _remoting(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "host": "mgmt01.contoso.com",
        "auth": "kerberos",
        "username": "svc-kerberos-bot@CONTOSO.COM",
        "domain_credential": {"user": "CONTOSO\\\\da", "password": {"env": "X"}},
        "cloud_credential": {"user": "kerb@contoso.com", "password": {"env": "Y"}},
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cloud_credential": None}, "give cloud_credential"),
        ({"mode": "jea"}, "remove domain_credential and cloud_credential"),
        (
            {
                "mode": "jea",
                "domain_credential": None,
                "cloud_credential": None,
                "configuration_name": "Microsoft.PowerShell",
            },
            "not the full-language Microsoft.PowerShell",
        ),
    ],
)
def test_the_remoting_mode_decides_which_credentials_the_bot_holds(changes: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from bot.config import RemotingConfig

    with pytest.raises(ValidationError, match=message):
        RemotingConfig.model_validate(_remoting(**changes))
    jea = RemotingConfig.model_validate(_remoting(mode="jea", domain_credential=None, cloud_credential=None))
    assert jea.session_configuration == "KerberosBot" and jea.domain_credential is None
    assert RemotingConfig.model_validate(_remoting()).session_configuration == "Microsoft.PowerShell"


@pytest.mark.parametrize(
    ("domains", "configured", "at_once"),
    [(1, None, 8), (16, None, 8), (17, None, 9), (100, None, 50), (128, None, 64), (500, None, 64), (100, 6, 6)],
)
def test_a_status_of_many_is_read_in_two_rounds_unless_the_host_is_told_otherwise(
    domains: int, configured: int | None, at_once: int
) -> None:
    # each round costs about one domain's read: two rounds keep a status of every domain within twice one's time
    assert runspaces_for(domains, configured) == at_once
    assert RemotingConfig.model_validate(remoting()).host_parallelism is None


def test_the_sessions_own_line_gives_its_peak_memory_and_is_no_domains_answer() -> None:
    report = json.dumps({"Domain": "contoso.com", "Report": {"Id": 1, "UserAccount": "CN=x", "ComputerAccount": ""}})
    answers, peak = ps.parse_servers([report, '{"Session":{"PeakMemoryMB":612}}'], ["contoso.com"])
    assert set(answers) == {"contoso.com"} and peak == 612
    for unsaid in ('{"Session":{}}', '{"Session":{"PeakMemoryMB":"612"}}', '{"Session":{"PeakMemoryMB":true}}'):
        assert ps.parse_servers([unsaid], ["contoso.com"])[1] is None  # a value not a count says nothing
    _, silent = ps.parse_servers([report], ["contoso.com"])
    assert silent is None  # an endpoint installed before the line


def test_a_session_past_its_memory_quota_is_named_with_what_to_change() -> None:
    for text in (
        "Exception of type 'System.OutOfMemoryException' was thrown.",
        "The WSMan provider host process did not return a proper response.  A provider in the host process may "
        "have behaved improperly.",
    ):
        message = ps.translate_failure("Get-AzureAdKerberosServer", text).user_message
        assert "MaxMemoryPerShellMB" in message and "host_parallelism lower" in message
