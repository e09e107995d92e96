"""The AD adapter (``LdapDirectory``) against a real Samba AD DC."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from kerberos_sandbox.redis_server import free_port
from ldap3 import MODIFY_REPLACE, SUBTREE, Connection

from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.ldap.directory import LdapDirectory, kerberos_objects_filter
from bot.domain.errors import DirectoryAuthError, DirectoryTimeout, DirectoryUnavailable
from tests.integration.conftest import SeedDomain
from tests.support.samba import SambaDC, SeedState

pytestmark = pytest.mark.samba


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers: a DC that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()
    for s in accepted:
        s.close()


async def test_reads_the_objects_the_module_creates(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    state = await directory.read_kerberos_objects()
    server = state.server
    assert server is not None
    assert server.computer_dn == f"CN=AzureADKerberos,OU=Domain Controllers,{contoso_dc.base_dn}"
    assert server.krbtgt_dn == f"CN=krbtgt_AzureAD,CN=Users,{contoso_dc.base_dn}"
    assert server.server_id is not None and server.display_name == f"krbtgt_{server.server_id}"
    key = server.key
    assert key is not None
    assert key.updated_from == contoso_dc.dc_dns_name == "dc1.contoso.test"
    assert key.updated_on.tzinfo is not None and abs(key.updated_on - datetime.now(UTC)) < timedelta(minutes=2)
    assert key.version > 0 and key.kvno is not None and key.kvno >= 1
    assert state.trusted_domain is None
    assert state.read_from == contoso_dc.host and state.domain_dns_name == "contoso.test"
    scp = state.service_connection_point
    assert scp is not None and scp.dn.startswith("CN=900274c4-b7d2-43c8-90ee-00a9f650e335,CN=AzureAD,CN=System,")
    assert scp.keyword("Id") == str(server.server_id)
    assert (scp.keyword("UserAccountSid") or "").startswith("S-1-5-21-")


async def test_rotation_moves_key_version_and_time(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    before = (await directory.read_kerberos_objects()).server
    await asyncio.sleep(1.1)  # originating times have one-second resolution
    await onprem.rotate_key()
    after = (await directory.read_kerberos_objects()).server
    assert before and after and before.key and after.key
    assert after.key.version > before.key.version  # a USN: grows, not necessarily by one
    assert after.key.kvno == (before.key.kvno or 0) + 1
    assert after.key.updated_on > before.key.updated_on


async def test_trusted_domain_object_with_sovereign_top_level_names(
    onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    await onprem.create_trusted_domain_object(["usgovcloudapi.net", "windows.net"])
    try:
        tdo = (await directory.read_kerberos_objects()).trusted_domain
        assert tdo is not None
        assert tdo.partner == "KERBEROS.MICROSOFTONLINE.COM"
        assert tdo.direction == 1 and tdo.attributes & 0x8
        assert tdo.created is not None and tdo.created.tzinfo is not None
        assert set(tdo.top_level_names) == {"usgovcloudapi.net", "windows.net"}  # not the trust's own name
    finally:
        await onprem.delete_trusted_domain_object()


async def test_each_seeded_state_reads_back(
    contoso_dc: SambaDC, seed_domain: SeedDomain, directory: LdapDirectory
) -> None:
    with_tdo = await seed_domain(contoso_dc, SeedState.SERVER_WITH_TDO)
    assert with_tdo.server is not None and with_tdo.trusted_domain is not None
    assert with_tdo.trusted_domain.top_level_names == ("windows.net",)
    fido = await seed_domain(contoso_dc, SeedState.FIDO_ONLY)
    assert fido.server is not None and fido.trusted_domain is None
    assert fido.server.server_id == with_tdo.server.server_id  # converged, not recreated
    gone = await seed_domain(contoso_dc, SeedState.NO_SERVER)
    assert gone.server is None and gone.trusted_domain is None and gone.service_connection_point is None
    again = await directory.read_kerberos_objects()
    assert again.server is None and again.read_from == contoso_dc.host


async def test_the_computer_is_found_in_another_ou(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    computers = f"CN=Computers,{contoso_dc.base_dn}"
    moved = f"CN=AzureADKerberos,{computers}"
    await contoso_dc.modify(lambda c: c.modify_dn(onprem.computer_dn, "CN=AzureADKerberos", new_superior=computers))
    try:
        server = (await directory.read_kerberos_objects()).server
        assert server is not None and server.computer_dn == moved
        assert server.krbtgt_dn == onprem.krbtgt_dn and server.key is not None
    finally:
        await contoso_dc.modify(
            lambda c: c.modify_dn(
                moved, "CN=AzureADKerberos", new_superior=f"OU=Domain Controllers,{contoso_dc.base_dn}"
            )
        )


async def test_the_krbtgt_is_the_one_the_computer_links_to(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, directory: LdapDirectory
) -> None:
    """Another read-only DC's krbtgt account is in the same search; only the linked one counts."""
    decoy = f"CN=krbtgt_decoy_{time.monotonic_ns()},CN=Users,{contoso_dc.base_dn}"
    rodc = ("1.2.840.113556.1.4.1341", True, None)
    await contoso_dc.modify(lambda c: c.add(decoy, ["user"], {"userAccountControl": 514}, controls=[rodc]))
    try:
        server = (await directory.read_kerberos_objects()).server
        assert server is not None and server.krbtgt_dn == onprem.krbtgt_dn
        decoy_entry = await contoso_dc.entry(decoy, ["msDS-SecondaryKrbTgtNumber"])
        assert decoy_entry is not None
        assert int(decoy_entry["raw"]["msds-secondarykrbtgtnumber"][0]) != server.server_id
        # and a dangling link leaves the computer without a krbtgt, not with the wrong one
        await contoso_dc.modify(lambda c: c.modify(onprem.computer_dn, {"msDS-KrbTgtLink": [(MODIFY_REPLACE, [])]}))
        unlinked = (await directory.read_kerberos_objects()).server
        assert unlinked is not None and unlinked.krbtgt_dn is None and unlinked.key is None
    finally:
        await contoso_dc.modify(lambda c: c.delete(decoy))
        await contoso_dc.modify(
            lambda c: c.modify(onprem.computer_dn, {"msDS-KrbTgtLink": [(MODIFY_REPLACE, [onprem.krbtgt_dn])]})
        )


async def test_warm_read_is_one_ldap_operation(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    cold = await directory.read_kerberos_objects()
    warm = await directory.read_kerberos_objects()
    assert cold.ldap_operations == 3  # bind, the search, the DC map from the configuration partition
    assert warm.ldap_operations == 1  # the search only: connection kept, DC map cached
    assert directory.operations == 4  # the cumulative counter for benchmarks


async def test_concurrent_reads_share_one_connection(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    states = await asyncio.gather(*(directory.read_kerberos_objects() for _ in range(10)))
    assert len({s.server.server_id if s.server else None for s in states}) == 1 and states[0].server is not None
    assert directory.operations == 3 + 9  # one bind and one DC map for all ten


async def test_a_dropped_connection_is_reopened(onprem: EmulatedOnPremModule, directory: LdapDirectory) -> None:
    await directory.read_kerberos_objects()
    conn = directory._session._conn
    assert conn is not None
    conn.socket.shutdown(socket.SHUT_RDWR)  # as when a DC restarts or drops idle connections
    state = await directory.read_kerberos_objects()
    assert state.server is not None
    assert state.ldap_operations == 3  # the search that found the socket dead, the rebind, the search again


async def test_a_dead_dc_in_the_pool_is_skipped(contoso_dc: SambaDC, onprem: EmulatedOnPremModule) -> None:
    dead = f"ldaps://127.0.0.1:{free_port()}"
    d = contoso_dc.ldap_directory(ldap_urls=[dead, contoso_dc.ldaps_url])
    try:
        state = await d.read_kerberos_objects()
        assert state.server is not None
        assert state.read_from == contoso_dc.host
        versions = await d.read_key_versions_per_dc()
        assert state.server.key is not None
        assert versions == {dead: None, contoso_dc.ldaps_url: state.server.key.version}
    finally:
        await d.close()


async def test_a_hanging_dc_is_skipped_after_the_timeout(
    contoso_dc: SambaDC, onprem: EmulatedOnPremModule, black_hole: int
) -> None:
    hanging = f"ldaps://127.0.0.1:{black_hole}"
    d = contoso_dc.ldap_directory(ldap_urls=[hanging, contoso_dc.ldaps_url], operation_timeout=1.0)
    try:
        assert (await d.read_kerberos_objects()).server is not None
    finally:
        await d.close()


async def test_a_dc_that_never_answers_is_a_timeout(contoso_dc: SambaDC, black_hole: int) -> None:
    url = f"ldap://127.0.0.1:{black_hole}"
    d = contoso_dc.ldap_directory(ldap_urls=[url], operation_timeout=1.0)
    with pytest.raises(DirectoryTimeout) as err:
        await d.read_kerberos_objects()
    assert "contoso.test" in err.value.user_message and url in err.value.user_message
    assert isinstance(err.value.__cause__, Exception)  # raised from the library's error, kept for the log
    await d.close()


async def test_all_dcs_down_is_unavailable_naming_the_urls(contoso_dc: SambaDC) -> None:
    urls = [f"ldaps://127.0.0.1:{free_port()}", f"ldap://127.0.0.1:{free_port()}"]
    d = contoso_dc.ldap_directory(ldap_urls=urls)
    with pytest.raises(DirectoryUnavailable) as err:
        await d.read_kerberos_objects()
    message = err.value.user_message
    assert "contoso.test" in message and all(u in message for u in urls)
    assert "Traceback" not in message and "Errno" not in message
    assert await d.read_key_versions_per_dc() == dict.fromkeys(urls)
    await d.close()


async def test_wrong_password_is_an_auth_error_without_the_password(contoso_dc: SambaDC) -> None:
    d = contoso_dc.ldap_directory(bind_password="Wr0ng!Secret-value")
    with pytest.raises(DirectoryAuthError) as err:
        await d.read_kerberos_objects()
    text = str(err.value)
    assert "Administrator@contoso.test" in text and "password" in text and "52e" in text
    assert "Wr0ng" not in text and contoso_dc.admin_password not in text
    await d.close()


async def test_a_password_rotated_at_its_source_is_read_again_when_the_dcs_refuse_the_old_one(
    contoso_dc: SambaDC, tmp_path: Path
) -> None:
    """A bind password kept in a file (or Azure Key Vault) that was changed there: the refused bind reads it
    again and binds with the new one, without a restart; a source that still holds the refused one fails as
    any wrong password does."""
    secret = tmp_path / "bind-password"
    secret.write_text(contoso_dc.admin_password)  # the source already holds the new password
    rotated = contoso_dc.ldap_directory(bind_password="Wr0ng!Old-value", bind_password_again=secret.read_text)
    try:
        assert (await rotated.read_kerberos_objects()) is not None
    finally:
        await rotated.close()
    secret.write_text("Wr0ng!Old-value")  # the source was not rotated: the old password is refused again
    stale = contoso_dc.ldap_directory(bind_password="Wr0ng!Old-value", bind_password_again=secret.read_text)
    try:
        with pytest.raises(DirectoryAuthError, match="52e"):
            await stale.read_kerberos_objects()
    finally:
        await stale.close()


async def test_tls_is_validated_against_the_instance_ca(contoso_dc: SambaDC, onprem: EmulatedOnPremModule) -> None:
    d = contoso_dc.ldap_directory(ca_file=contoso_dc.ca_file, tls_validate=True)
    try:
        assert (await d.read_kerberos_objects()).server is not None
    finally:
        await d.close()


async def test_an_untrusted_certificate_is_refused(contoso_dc: SambaDC, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    for url in (contoso_dc.ldaps_url, contoso_dc.starttls_url):
        d = contoso_dc.ldap_directory(ldap_urls=[url], ca_file=other_ca)
        with pytest.raises(DirectoryUnavailable, match="certificate was not trusted"):
            await d.read_kerberos_objects()
        await d.close()


async def test_ldap_urls_use_starttls_before_binding(contoso_dc: SambaDC, onprem: EmulatedOnPremModule) -> None:
    d = contoso_dc.ldap_directory(ldap_urls=[contoso_dc.starttls_url])
    try:
        assert (await d.read_kerberos_objects()).server is not None
        conn = d._session._conn
        assert conn is not None and conn.tls_started and not conn.server.ssl  # TLS came from StartTLS on 389
    finally:
        await d.close()


async def test_filter_values_are_escaped(contoso_dc: SambaDC, directory: LdapDirectory) -> None:
    hostile = "*)(objectClass=*"
    ldap_filter = kerberos_objects_filter(computer_cn=hostile)
    assert "(cn=\\2a\\29\\28objectClass=\\2a)" in ldap_filter
    session = directory._session

    def run(conn: Connection) -> list[str]:
        return [e["dn"] for e in session.search(conn, contoso_dc.base_dn, ldap_filter, SUBTREE, ["cn"])]

    found = await session.run(run)
    # unescaped, "*" would have matched every computer, the DC's own account among them
    assert not any(dn.upper().startswith("CN=DC1,") for dn in found)


async def test_ping_reads_the_root_dse(contoso_dc: SambaDC, directory: LdapDirectory) -> None:
    assert await directory.ping() == contoso_dc.host
    assert directory.operations == 2  # bind + RootDSE


async def test_second_domain_is_a_separate_dc(fabrikam_dc: SambaDC, seed_domain: SeedDomain) -> None:
    await seed_domain(fabrikam_dc, SeedState.FIDO_ONLY)
    d = fabrikam_dc.ldap_directory()
    try:
        assert await d.ping() == fabrikam_dc.host
        state = await d.read_kerberos_objects()
        assert state.domain_dns_name == "fabrikam.test" and state.read_from == fabrikam_dc.host
        assert state.server is not None and state.server.key is not None
        assert state.server.key.updated_from == "dc1.fabrikam.test"
    finally:
        await d.close()
