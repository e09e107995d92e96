"""The AD adapter against a real Samba AD DC."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from bot.adapters.ad_ldap import LdapDirectory
from bot.adapters.kerberos_module.emulator_ad import EmulatedOnPremModule
from bot.domain.errors import DirectoryAuthError, DirectoryUnavailable
from bot.sandbox.sandbox import ADMIN_PASSWORD, SandboxDomain
from tests.integration.conftest import endpoint

pytestmark = pytest.mark.samba


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_reads_the_objects_the_module_creates(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    state = await directory.read_kerberos_objects()
    server = state.server
    assert server is not None
    assert server.computer_dn == "CN=AzureADKerberos,OU=Domain Controllers,DC=contoso,DC=test"
    assert server.krbtgt_dn == "CN=krbtgt_AzureAD,CN=Users,DC=contoso,DC=test"
    assert server.server_id is not None and server.display_name == f"krbtgt_{server.server_id}"
    assert server.key is not None
    assert server.key.updated_from == "dc1.contoso.test"
    assert abs(server.key.updated_on - datetime.now(UTC)) < timedelta(minutes=2)
    assert state.trusted_domain is None
    scp = state.service_connection_point
    assert scp is not None and scp.keyword("Id") == str(server.server_id)
    assert (scp.keyword("UserAccountSid") or "").startswith("S-1-5-21-")


async def test_rotation_moves_key_version_and_time(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    before = (await directory.read_kerberos_objects()).server
    await onprem.rotate_key()
    after = (await directory.read_kerberos_objects()).server
    assert before and after and before.key and after.key
    assert after.key.version > before.key.version  # a USN: grows, not necessarily by one
    assert after.key.kvno == (before.key.kvno or 0) + 1
    assert after.key.updated_on >= before.key.updated_on


async def test_trusted_domain_object_with_sovereign_top_level_names(
    onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    await onprem.create_trusted_domain_object(["usgovcloudapi.net", "windows.net"])
    tdo = (await directory.read_kerberos_objects()).trusted_domain
    assert tdo is not None
    assert tdo.partner == "KERBEROS.MICROSOFTONLINE.COM"
    assert tdo.direction == 1 and tdo.attributes & 0x8
    assert set(tdo.top_level_names) == {"usgovcloudapi.net", "windows.net"}


async def test_removing_the_tdo_removes_the_trust_account_so_it_can_be_created_again(
    onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    await onprem.create_trusted_domain_object(["windows.net"])
    await onprem.delete_trusted_domain_object()
    state = await directory.read_kerberos_objects()
    assert state.trusted_domain is None
    assert state.server is not None  # the service account stays
    await onprem.create_trusted_domain_object(["windows.net"])
    assert (await directory.read_kerberos_objects()).trusted_domain is not None


async def test_no_server_reads_as_none(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    await onprem.delete_server()
    state = await directory.read_kerberos_objects()
    assert state.server is None and state.trusted_domain is None and state.service_connection_point is None


async def test_warm_read_is_one_ldap_operation(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    cold = await directory.read_kerberos_objects()
    warm = await directory.read_kerberos_objects()
    assert cold.ldap_operations <= 3  # bind, the search, the DC map from the configuration partition
    assert warm.ldap_operations == 1


async def test_a_dead_dc_in_the_pool_is_skipped(contoso_dc: SandboxDomain, onprem: EmulatedOnPremModule) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    d = LdapDirectory(endpoint(contoso_dc, ldap_urls=[dead, "ldaps://127.0.0.1:636"]))
    try:
        state = await d.read_kerberos_objects()
        assert state.server is not None
        assert state.read_from == "127.0.0.1"
        versions = await d.read_key_versions_per_dc()
        assert versions[dead] is None and versions["ldaps://127.0.0.1:636"] is not None
    finally:
        await d.close()


async def test_all_dcs_down_is_unavailable_naming_the_urls(contoso_dc: SandboxDomain) -> None:
    urls = [f"ldaps://127.0.0.1:{free_port()}", f"ldaps://127.0.0.1:{free_port()}"]
    d = LdapDirectory(endpoint(contoso_dc, ldap_urls=urls))
    with pytest.raises(DirectoryUnavailable) as err:
        await d.read_kerberos_objects()
    assert "contoso.test" in err.value.user_message and urls[0] in err.value.user_message
    await d.close()


async def test_wrong_password_is_an_auth_error_without_the_password(contoso_dc: SandboxDomain) -> None:
    d = LdapDirectory(endpoint(contoso_dc, bind_password="Wr0ng!Secret-value"))
    with pytest.raises(DirectoryAuthError) as err:
        await d.read_kerberos_objects()
    assert "Administrator@contoso.test" in err.value.user_message
    assert "Wr0ng" not in str(err.value) and ADMIN_PASSWORD not in str(err.value)
    await d.close()


async def test_untrusted_certificate_is_refused(contoso_dc: SandboxDomain, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    d = LdapDirectory(endpoint(contoso_dc, ca_file=other_ca))
    with pytest.raises(DirectoryUnavailable, match="certificate was not trusted"):
        await d.read_kerberos_objects()
    await d.close()


async def test_starttls_on_389(contoso_dc: SandboxDomain, onprem: EmulatedOnPremModule) -> None:
    d = LdapDirectory(endpoint(contoso_dc, ldap_urls=["ldap://127.0.0.1:389"]))
    try:
        assert (await d.read_kerberos_objects()).server is not None
    finally:
        await d.close()


async def test_second_domain_is_a_separate_dc(contoso_dc: SandboxDomain) -> None:
    from bot.sandbox.sandbox import DEFAULT_DOMAINS, samba

    fabrikam = DEFAULT_DOMAINS[1]
    await samba("up", fabrikam)
    d = LdapDirectory(endpoint(fabrikam), configuration_dn="CN=Configuration,DC=fabrikam,DC=test")
    try:
        assert await d.ping() == fabrikam.address
        state = await d.read_kerberos_objects()
        assert state.domain_dns_name == "fabrikam.test" and state.read_from == "127.0.0.2"
    finally:
        await d.close()
