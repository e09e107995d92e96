"""The emulator's AD half (``EmulatedOnPremModule``): real writes on a Samba AD DC over LDAPS and LSA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ldap3.protocol.formatters.formatters import format_sid

from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.ldap.directory import LdapDirectory
from bot.domain.errors import KerberosModuleError
from tests.integration.conftest import SeedDomain
from tests.support.samba import SambaDC, SeedState

pytestmark = pytest.mark.samba

KRBTGT_ATTRS = [
    "sAMAccountName",
    "userAccountControl",
    "msDS-SecondaryKrbTgtNumber",
    "objectSid",
    "msDS-KeyVersionNumber",
]
COMPUTER_ATTRS = [
    "sAMAccountName",
    "userAccountControl",
    "msDS-KrbTgtLink",
    "msDS-RevealOnDemandGroup",
    "msDS-NeverRevealGroup",
    "primaryGroupID",
    "objectSid",
]


def first(entry: dict[str, object] | None, attribute: str) -> str:
    assert entry is not None
    raw = entry["raw"]
    assert isinstance(raw, dict)
    return bytes(raw[attribute.lower()][0]).decode()


@pytest.fixture
async def fresh(contoso_dc: SambaDC, seed_domain: SeedDomain) -> AsyncIterator[EmulatedOnPremModule]:
    """No server in contoso; the module that is about to create one."""
    await seed_domain(contoso_dc, SeedState.NO_SERVER)
    module = contoso_dc.module()
    yield module
    await module.close()


async def test_create_server_builds_what_the_module_builds(contoso_dc: SambaDC, fresh: EmulatedOnPremModule) -> None:
    await fresh.create_server()
    base = contoso_dc.base_dn
    krbtgt = await contoso_dc.entry(fresh.krbtgt_dn, KRBTGT_ATTRS)
    server_id = int(first(krbtgt, "msDS-SecondaryKrbTgtNumber"))  # assigned by the DC (RODC control)
    assert first(krbtgt, "sAMAccountName") == f"krbtgt_{server_id}"
    assert int(first(krbtgt, "userAccountControl")) & 0x2  # disabled
    assert int(first(krbtgt, "msDS-KeyVersionNumber")) >= 2  # the DC's random key, then ours

    computer = await contoso_dc.entry(fresh.computer_dn, COMPUTER_ATTRS)
    assert computer is not None and computer["dn"] == f"CN=AzureADKerberos,OU=Domain Controllers,{base}"
    assert first(computer, "sAMAccountName") == "AzureADKerberos$"
    assert int(first(computer, "userAccountControl")) == 0x04001000
    assert first(computer, "primaryGroupID") == "521"  # read-only domain controllers
    assert first(computer, "msDS-KrbTgtLink").lower() == fresh.krbtgt_dn.lower()
    assert first(computer, "msDS-RevealOnDemandGroup").startswith("CN=Allowed RODC Password Replication Group,")
    assert first(computer, "msDS-NeverRevealGroup").startswith("CN=Denied RODC Password Replication Group,")

    assert krbtgt is not None and computer is not None
    scp = await contoso_dc.entry(fresh.scp_dn, ["keywords"])
    assert scp is not None and scp["dn"].startswith("CN=900274c4-b7d2-43c8-90ee-00a9f650e335,CN=AzureAD,CN=System,")
    keywords = {v.decode() for v in scp["raw"]["keywords"]}
    assert keywords == {
        f"Id={server_id}",
        f"UserAccountSid={format_sid(krbtgt['raw']['objectsid'][0])}",
        f"ComputerAccountSid={format_sid(computer['raw']['objectsid'][0])}",
    }


async def test_create_server_is_idempotent(fresh: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    await fresh.create_server()
    first_read = (await directory.read_kerberos_objects()).server
    await fresh.create_server()
    second_read = (await directory.read_kerberos_objects()).server
    assert first_read and second_read and first_read.key and second_read.key
    assert second_read.server_id == first_read.server_id and second_read.computer_dn == first_read.computer_dn
    assert second_read.key.version > first_read.key.version  # set again, like the module's -Force


async def test_rotate_key_changes_the_key_and_returns_nothing(
    onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    before = (await directory.read_kerberos_objects()).server
    result: object = await onprem.rotate_key()  # type: ignore[func-returns-value]
    after = (await directory.read_kerberos_objects()).server
    assert result is None  # the key is never handed out
    assert before and after and before.key and after.key
    assert after.key.kvno == (before.key.kvno or 0) + 1 and after.key.version > before.key.version


async def test_tdo_with_top_level_names_and_its_trust_account(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    await onprem.create_trusted_domain_object(["windows.net", "chinacloudapi.cn"])
    try:
        tdo = (await directory.read_kerberos_objects()).trusted_domain
        assert tdo is not None and tdo.dn == onprem.tdo_dn
        assert tdo.direction == 1 and tdo.attributes == 0x8
        assert set(tdo.top_level_names) == {"windows.net", "chinacloudapi.cn"}
        raw = await contoso_dc.entry(tdo.dn, ["flatName", "securityIdentifier"])
        assert first(raw, "flatName") == "KERBEROS"
        assert await contoso_dc.search(contoso_dc.base_dn, "(sAMAccountName=KERBEROS$)", ["cn"])
    finally:
        await onprem.delete_trusted_domain_object()


async def test_rotating_the_trust_keys_is_proven_by_the_tdos_replication_metadata(
    onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    """Samba answers LSA's set calls with OK and changes nothing; the rotation must show in the metadata."""
    await onprem.create_trusted_domain_object(["windows.net"])
    try:
        before = (await directory.read_kerberos_objects()).trusted_domain
        assert before is not None and before.keys_updated_on is not None  # the creation set the first key
        await asyncio.sleep(1.1)  # replication metadata has one-second resolution
        await onprem.rotate_trusted_domain_keys()
        after = (await directory.read_kerberos_objects()).trusted_domain
        assert after is not None and after.keys_updated_on is not None
        assert after.keys_updated_on > before.keys_updated_on
        assert after.top_level_names == before.top_level_names and after.dn == before.dn
        # twice within one second: the time cannot tell, the metadata's version and USN do
        await onprem.rotate_trusted_domain_keys()
        again = (await directory.read_kerberos_objects()).trusted_domain
        assert again is not None and again.keys_change is not None and after.keys_change is not None
        assert again.keys_change != after.keys_change
    finally:
        await onprem.delete_trusted_domain_object()


async def test_a_second_tdo_is_refused_clearly(onprem: EmulatedOnPremModule) -> None:
    await onprem.create_trusted_domain_object(["windows.net"])
    try:
        with pytest.raises(KerberosModuleError, match="already exists"):
            await onprem.create_trusted_domain_object(["windows.net"])
    finally:
        await onprem.delete_trusted_domain_object()


async def test_removing_the_tdo_removes_the_trust_account_so_it_can_be_created_again(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    await onprem.create_trusted_domain_object(["windows.net"])
    await onprem.delete_trusted_domain_object()
    state = await directory.read_kerberos_objects()
    assert state.trusted_domain is None
    assert state.server is not None  # the Kerberos server stays
    assert await contoso_dc.search(contoso_dc.base_dn, "(sAMAccountName=KERBEROS$)", ["cn"]) == []
    await onprem.create_trusted_domain_object(["windows.net"])
    assert (await directory.read_kerberos_objects()).trusted_domain is not None
    await onprem.delete_trusted_domain_object()


async def test_a_left_over_trust_account_is_named_and_cleaned_up(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule
) -> None:
    await onprem.create_trusted_domain_object(["windows.net"])
    await contoso_dc.modify(lambda c: c.delete(onprem.tdo_dn))  # what a bare LDAP delete leaves: KERBEROS$
    with pytest.raises(KerberosModuleError, match=r"KERBEROS\$"):
        await onprem.create_trusted_domain_object(["windows.net"])
    await onprem.delete_trusted_domain_object()  # takes the stray account too
    await onprem.create_trusted_domain_object(["windows.net"])
    await onprem.delete_trusted_domain_object()


async def test_delete_server_removes_every_object(contoso_dc: SambaDC, onprem: EmulatedOnPremModule) -> None:
    await onprem.create_trusted_domain_object(["windows.net"])
    await onprem.delete_server()
    for dn in (onprem.tdo_dn, onprem.scp_dn, onprem.computer_dn, onprem.krbtgt_dn):
        assert await contoso_dc.entry(dn) is None, dn
    assert await contoso_dc.search(contoso_dc.base_dn, "(sAMAccountName=KERBEROS$)", ["cn"]) == []
    await onprem.delete_server()  # nothing left to remove is not an error


async def test_tdo_needs_samba_conf(contoso_dc: SambaDC) -> None:
    module = EmulatedOnPremModule(contoso_dc.endpoint())
    with pytest.raises(KerberosModuleError, match="no samba_conf"):
        await module.create_trusted_domain_object(["windows.net"])
    await module.close()


async def test_wrong_lsa_password_is_clear_and_not_echoed(contoso_dc: SambaDC, onprem: EmulatedOnPremModule) -> None:
    module = EmulatedOnPremModule(
        contoso_dc.endpoint(), samba_conf=contoso_dc.smb_conf, admin_password="N0t-the-Admin-Secret"
    )
    with pytest.raises(KerberosModuleError, match="password was refused") as err:
        await module.create_trusted_domain_object(["windows.net"])
    assert "N0t-the-Admin-Secret" not in str(err.value)
    await module.close()


@pytest.mark.parametrize("name", ["windows.net; rm -rf /", "-x", "", "a..b"])
async def test_top_level_names_must_be_dns_names(onprem: EmulatedOnPremModule, name: str) -> None:
    with pytest.raises(KerberosModuleError, match="DNS names"):
        await onprem.create_trusted_domain_object([name])


async def test_a_directory_without_rights_is_a_module_error(contoso_dc: SambaDC) -> None:
    module = contoso_dc.module(bind_password="Wr0ng-Admin-Password")
    with pytest.raises(KerberosModuleError) as err:
        await module.rotate_key()
    assert "Administrator@contoso.test" in str(err.value) and "Wr0ng" not in str(err.value)
    await module.close()
