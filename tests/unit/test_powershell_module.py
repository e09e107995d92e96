"""The real module's side, without a Windows host: invocations, output parsing, error mapping."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.domain.ports import SetServerOptions

FIXTURES = Path(__file__).parents[1] / "fixtures" / "module"
SAMPLE_TIME = datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC)


def test_empty_server_sample_parses_to_an_empty_report() -> None:
    report = ps.parse_server((FIXTURES / "empty-server.txt").read_text())
    assert not report.has_on_prem and not report.has_cloud
    assert all(value in (None, "") for _, value in report.fields())


def test_fido_only_sample() -> None:
    report = ps.parse_server((FIXTURES / "fido-only.txt").read_text())
    assert report.id == 25614 and report.cloud_id == 25614
    assert report.user_account == "CN=krbtgt-AzureAD,CN=Users,DC=aadsqlmi,DC=net"
    assert report.computer_account == "CN=AzureADKerberos,OU=Domain Controllers,DC=aadsqlmi,DC=net"
    assert report.key_version == report.cloud_key_version == 53325
    assert report.key_updated_on == report.cloud_key_updated_on == SAMPLE_TIME
    assert report.key_updated_from == "ds-aad-auth-dem.aadsqlmi.net"
    assert report.cloud_trust_display is None


def test_cloud_trust_sample() -> None:
    report = ps.parse_server((FIXTURES / "with-cloud-trust.txt").read_text())
    assert report.cloud_trust_display == "Microsoft.AzureAD.Kdc.Service.TrustDisplay"
    assert report.display_name == "krbtgt_25614"


def test_json_output_of_windows_powershell() -> None:
    report = ps.parse_server((FIXTURES / "with-cloud-trust.json").read_text())
    assert report.key_updated_on == SAMPLE_TIME and report.cloud_key_version == 53325
    assert report.cloud_trust_display == "Microsoft.AzureAD.Kdc.Service.TrustDisplay"
    assert report.cloud_top_level_names == ("usgovcloudapi.net", "windows.net")


def test_user_text_is_only_ever_a_parameter_value() -> None:
    hostile = 'contoso.com"; Remove-AzureAdKerberosServer -Domain x; $("'
    invocation = ps.set_server(hostile, SetServerOptions(setup_cloud_trust=True, top_level_names=["a.net", "b.net"]))
    assert invocation.cmdlet == "Set-AzureADKerberosServer"
    assert invocation.parameters == {"Domain": hostile, "TopLevelNames": "a.net,b.net"}
    assert invocation.switches == ("SetupCloudTrust",)
    assert hostile not in invocation.describe()


def test_rotation_with_the_cloud_trust_is_the_source_documents_command() -> None:
    options = SetServerOptions(rotate_server_key=True, setup_cloud_trust=True, top_level_names=["windows.net"])
    invocation = ps.set_server("contoso.com", options)
    assert invocation.switches == ("SetupCloudTrust", "RotateServerKey")
    assert invocation.describe() == (
        "Set-AzureADKerberosServer -Domain <Domain> -TopLevelNames <TopLevelNames> -SetupCloudTrust -RotateServerKey"
    )


def test_rotation_switches() -> None:
    invocation = ps.set_server("contoso.com", SetServerOptions(rotate_server_key=True, force=True))
    assert invocation.switches == ("RotateServerKey", "Force") and "TopLevelNames" not in invocation.parameters
    assert ps.remove_trusted_domain_object("c").cmdlet == "Remove-AzureADKerberosServerTrustedDomainObject"
    assert ps.remove_server("c").cmdlet == "Remove-AzureAdKerberosServer"
    assert ps.get_server("c").describe() == "Get-AzureAdKerberosServer -Domain <Domain>"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Exception calling SetupCloudTrust: LsaCreateTrustedDomainEx 0x549", "forest root domain"),
        ("Collision setting top level names on trust KERBEROS.MICROSOFTONLINE.COM", "already routes"),
        ("missing required properties ... SecondaryKrbTgtNumber Value:0", "Enterprise Admins"),
        ("Insufficient access rights to perform the operation.", "SeEnableDelegationPrivilege"),
        ("Strong authentication is required for this operation", "LDAP signing"),
        ("The term 'Set-AzureADKerberosServer' is not recognized as the name of a cmdlet", "Install-Module"),
        ("AADSTS50076: Due to a configuration change made by your administrator", "cannot answer an MFA prompt"),
        ("AADSTS7000222: The provided client secret keys are expired", "no interactive MFA"),
    ],
)
def test_known_module_failures_get_actionable_messages(error: str, expected: str) -> None:
    message = ps.translate_failure("Set-AzureADKerberosServer", error).user_message
    assert message.startswith("Set-AzureADKerberosServer failed:") and expected in message


def test_unknown_failure_keeps_its_first_line() -> None:
    message = ps.translate_failure("Get-AzureAdKerberosServer", "Something odd\nat line 3").user_message
    assert message == "Get-AzureAdKerberosServer failed: Something odd"
