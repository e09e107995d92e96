"""Parsers of the AD adapter, on bytes captured from the real Samba DC and an XML sample shaped like Windows'."""

import struct
import uuid
from datetime import UTC, datetime

import pytest
from ldap3.core.exceptions import (
    LDAPInvalidCredentialsResult,
    LDAPSessionTerminatedByServerError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
)

from bot.adapters.ldap.connection import LdapEndpoint, LdapSession
from bot.adapters.ldap.directory import LdapDirectory, kerberos_objects_filter
from bot.adapters.ldap.wire_formats import (
    UNICODE_PWD_ATTID,
    parse_forest_trust_top_level_names,
    parse_repl_attribute_metadata_xml,
    parse_repl_property_metadata,
)
from bot.domain.errors import (
    DirectoryAuthError,
    DirectoryDataError,
    DirectoryError,
    DirectoryTimeout,
    DirectoryUnavailable,
)

# replPropertyMetaData of CN=krbtgt_AzureAD,CN=Users,DC=contoso,DC=test as Samba 4.17 served it over LDAPS
# (created with the RODC control, key set by the emulator, then rotated once: kvno 3, whenChanged 20261125062411Z)
SAMBA_REPL_PROPERTY_METADATA = bytes.fromhex(
    "0100000000000000190000000000000000000000010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000003000000010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000000d000000010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000001000200010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000002000200010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f000000000000a9000200010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000019010200010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000001000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000008000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000010000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000019000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000037000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f00000000000040000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000005a000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f0000000000005e000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f00000000000060000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f00000000000062000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000007d000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f00000000000092000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000009f000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f000000000000a0000900030000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "660f000000000000660f000000000000dd000900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000002e010900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f0000000000000e030900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f00000000000089070900010000000b10172103000000cc167173eccee14ca3eab686e37838fd"
    "610f000000000000610f000000000000"
)
SAMBA_DC1_INVOCATION_ID = "737116cc-ceec-4ce1-a3ea-b686e37838fd"  # invocationId of CN=NTDS Settings,CN=DC1,...

# msDS-TrustForestTrustInfo of the TDO that LsarCreateTrustedDomainEx2 + lsaRSetForestTrustInformation made
# (lsa_tdo.py, --tln windows.net): two top-level names (windows.net and the trust's own) and one domain info
SAMBA_FOREST_TRUST_INFO = bytes.fromhex(
    "01000000030000001c0000000000000024501c96a57cdd01000b00000077696e646f77732e6e65742d00000000000000"
    "24501c96a57cdd01001c0000004b45524245524f532e4d4943524f534f46544f4e4c494e452e434f4d55000000000000"
    "0024501c96a57cdd010218000000010400000000000515000000c7f7fed77c7755c8945ace011c0000004b4552424552"
    "4f532e4d4943524f534f46544f4e4c494e452e434f4d080000004b45524245524f53"
)

# One value of msDS-ReplAttributeMetaData as Windows returns it (Samba 4.17 returns none)
WINDOWS_XML = (
    "<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>unicodePwd</pszAttributeName>\n"
    "\t<ftimeLastOriginatingChange>2022-02-24T09:03:15Z</ftimeLastOriginatingChange>\n"
    "\t<dwVersion>7</dwVersion>\n\t<usnOriginatingChange>212621</usnOriginatingChange>\n"
    "\t<usnLocalChange>212621</usnLocalChange>\n"
    "\t<uuidLastOriginatingDsaInvocationID>72B40677-350D-4DE9-9725-DA3EC274EFD4</uuidLastOriginatingDsaInvocationID>\n"
    "\t<pszLastOriginatingDsaDN>CN=NTDS Settings,CN=DS-AAD-AUTH,CN=Servers,CN=Default-First-Site-Name,"
    "CN=Sites,CN=Configuration,DC=aadsqlmi,DC=net</pszLastOriginatingDsaDN>\n</DS_REPL_ATTR_META_DATA>\n\x00"
)
WINDOWS_XML_OTHER = WINDOWS_XML.replace("unicodePwd", "pwdLastSet").replace("212621", "212622")


def test_samba_binary_metadata_gives_the_unicode_pwd_entry() -> None:
    entries = parse_repl_property_metadata(SAMBA_REPL_PROPERTY_METADATA)
    assert len(entries) == 25
    pwd = next(e for e in entries if e.attid == UNICODE_PWD_ATTID)
    assert pwd.version == 3  # set three times: the DC's random key, create_server, one rotation
    assert pwd.originating_usn == pwd.local_usn == 3942  # what the module calls KeyVersion
    assert pwd.originating_time == datetime(2026, 11, 25, 6, 24, 11, tzinfo=UTC)
    assert pwd.originating_invocation_id == SAMBA_DC1_INVOCATION_ID
    object_class = next(e for e in entries if e.attid == 0)
    assert object_class.version == 1 and object_class.originating_usn == 3937


def _vector(*entries: tuple[int, int, int, int]) -> bytes:
    invocation = uuid.UUID(SAMBA_DC1_INVOCATION_ID).bytes_le
    head = struct.pack("<IIII", 1, 0, len(entries), 0)
    return head + b"".join(
        struct.pack("<IIQ16sqq", attid, version, seconds, invocation, usn, usn)
        for attid, version, seconds, usn in entries
    )


def test_binary_metadata_with_a_windows_sized_usn() -> None:
    seconds = int((datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC) - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds())
    pwd = parse_repl_property_metadata(_vector((UNICODE_PWD_ATTID, 9, seconds, 212621)))[0]
    assert pwd.originating_usn == 212621 and pwd.originating_time.year == 2022


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        SAMBA_REPL_PROPERTY_METADATA[:15],
        SAMBA_REPL_PROPERTY_METADATA[:-1],  # the last entry cut short
        b"\x02" + SAMBA_REPL_PROPERTY_METADATA[1:],  # version 2 is not this structure
    ],
)
def test_malformed_binary_metadata_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        parse_repl_property_metadata(blob)


def test_windows_xml_metadata() -> None:
    found = parse_repl_attribute_metadata_xml([WINDOWS_XML_OTHER, WINDOWS_XML])
    entry = found["unicodepwd"]
    assert entry.originating_usn == 212621 and entry.version == 7
    assert entry.originating_time == datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC)
    assert entry.originating_invocation_id == "72b40677-350d-4de9-9725-da3ec274efd4"
    assert entry.originating_dsa_dn and entry.originating_dsa_dn.startswith("CN=NTDS Settings,CN=DS-AAD-AUTH")
    assert found["pwdlastset"].originating_usn == 212622


def test_malformed_xml_metadata_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_repl_attribute_metadata_xml([WINDOWS_XML.replace("2022-02-24T09:03:15Z", "yesterday")])


def test_samba_forest_trust_info_top_level_names() -> None:
    assert parse_forest_trust_top_level_names(SAMBA_FOREST_TRUST_INFO) == (
        "windows.net",
        "KERBEROS.MICROSOFTONLINE.COM",  # MS-LSAD wants the trust's own name; the adapter drops it
    )
    assert parse_forest_trust_top_level_names(b"") == ()


def _record(record_type: int, data: bytes) -> bytes:
    body = struct.pack("<IQ", 0, 0) + bytes([record_type]) + data
    return struct.pack("<I", len(body)) + body


def test_only_top_level_name_records_count() -> None:
    name = b"usgovcloudapi.net"
    info = (
        struct.pack("<II", 1, 3)
        + _record(1, struct.pack("<I", 9) + b"excluded.")  # a TLN exclusion
        + _record(0, struct.pack("<I", len(name)) + name)
        + _record(2, b"\x00" * 20)  # domain info
    )
    assert parse_forest_trust_top_level_names(info) == ("usgovcloudapi.net",)


@pytest.mark.parametrize(
    "blob",
    [
        SAMBA_FOREST_TRUST_INFO[:6],
        SAMBA_FOREST_TRUST_INFO[:40],  # the first record cut short
        struct.pack("<II", 1, 4) + SAMBA_FOREST_TRUST_INFO[8:],  # one record more than there is
        struct.pack("<II", 2, 3) + SAMBA_FOREST_TRUST_INFO[8:],
        struct.pack("<II", 1, 1) + _record(0, struct.pack("<I", 99) + b"short"),
    ],
)
def test_malformed_forest_trust_info_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        parse_forest_trust_top_level_names(blob)


def test_filter_escapes_its_values() -> None:
    assert kerberos_objects_filter() == (
        "(|(&(objectClass=computer)(cn=AzureADKerberos))(msDS-SecondaryKrbTgtNumber=*)"
        "(&(objectClass=trustedDomain)(trustPartner=KERBEROS.MICROSOFTONLINE.COM))"
        "(&(objectClass=serviceConnectionPoint)(cn=900274c4-b7d2-43c8-90ee-00a9f650e335)))"
    )
    hostile = kerberos_objects_filter(computer_cn="x)(|(cn=*", realm="a\\b", scp_cn="\x00")
    assert "(cn=x\\29\\28|\\28cn=\\2a)" in hostile and "trustPartner=a\\5cb" in hostile and "(cn=\\00)" in hostile


# -- malformed objects and error mapping (no DC needed) -------------------------------------------


def _directory() -> tuple[LdapDirectory, LdapSession]:
    endpoint = LdapEndpoint("contoso.test", "DC=contoso,DC=test", ["ldaps://dc1:636"], "reader@contoso.test", "S3cret!")
    directory = LdapDirectory(endpoint)
    return directory, directory._session


def _entry(dn: str, **attributes: list[bytes]) -> dict[str, object]:
    return {"dn": dn, "raw": {k.lower(): v for k, v in attributes.items()}}


@pytest.mark.parametrize(
    "krbtgt_attributes",
    [
        {"msDS-SecondaryKrbTgtNumber": [b"not-a-number"]},
        {"replPropertyMetaData": [SAMBA_REPL_PROPERTY_METADATA[:100]]},
        {"msDS-ReplAttributeMetaData": [b"<DS_REPL_ATTR_META_DATA><pszAttributeName>unicodePwd"]},
    ],
)
def test_unexpected_object_shapes_are_data_errors(
    krbtgt_attributes: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, session = _directory()
    krbtgt = "CN=krbtgt_AzureAD,CN=Users,DC=contoso,DC=test"
    entries = [
        _entry(
            "CN=AzureADKerberos,OU=Domain Controllers,DC=contoso,DC=test",
            objectClass=[b"computer"],
            **{"msDS-KrbTgtLink": [krbtgt.encode()]},
        ),
        _entry(krbtgt, objectClass=[b"user"], **krbtgt_attributes),
    ]
    monkeypatch.setattr(session, "search", lambda *args, **kwargs: entries)
    with pytest.raises(DirectoryDataError, match="contoso.test"):
        directory._read(session, None)


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (LDAPInvalidCredentialsResult(message="80090308: LdapErr: ..., data 52e, v1db1"), DirectoryAuthError, "52e"),
        (LDAPInvalidCredentialsResult(message="80090308: LdapErr: ..., data 775, v1db1"), DirectoryAuthError, "locked"),
        (LDAPSocketOpenError("socket connection error while opening: timed out"), DirectoryUnavailable, "answered"),
        (LDAPSocketOpenError("socket ssl wrapping error: The handshake operation timed out"), DirectoryTimeout, "5 s"),
        (LDAPSocketReceiveError("error receiving data: timed out"), DirectoryTimeout, "5 s"),
        (LDAPSocketOpenError("socket ssl wrapping error: certificate verify failed"), DirectoryUnavailable, "ca_file"),
        (LDAPSessionTerminatedByServerError("session terminated by server"), DirectoryUnavailable, "answered"),
    ],
)
def test_library_errors_map_to_directory_errors(exc: Exception, kind: type[DirectoryError], words: str) -> None:
    endpoint = LdapEndpoint(
        "contoso.test", "DC=contoso,DC=test", ["ldaps://dc1:636"], "reader@contoso.test", "S3cret!", operation_timeout=5
    )
    error = LdapSession(endpoint).translate(exc)
    assert type(error) is kind and words in error.user_message and "contoso.test" in error.user_message
    assert "S3cret" not in str(error) and "Traceback" not in str(error)


def test_an_unknown_dc_does_not_cost_a_search_on_every_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyUpdatedFrom falls back to the invocation id; the DC map is not reloaded on every read."""
    directory, session = _directory()
    krbtgt = "CN=krbtgt_AzureAD,CN=Users,DC=contoso,DC=test"
    objects = [
        _entry(
            "CN=AzureADKerberos,OU=Domain Controllers,DC=contoso,DC=test",
            objectClass=[b"computer"],
            **{"msDS-KrbTgtLink": [krbtgt.encode()]},
        ),
        _entry(krbtgt, objectClass=[b"user"], replPropertyMetaData=[SAMBA_REPL_PROPERTY_METADATA]),
    ]
    bases: list[str] = []

    def search(conn: object, base: str, *args: object) -> list[dict[str, object]]:
        bases.append(base)
        return objects if base == "DC=contoso,DC=test" else []  # the configuration partition knows no DC

    monkeypatch.setattr(session, "search", search)
    first = directory._read(session, None)
    second = directory._read(session, None)
    assert first.server and first.server.key and first.server.key.updated_from == SAMBA_DC1_INVOCATION_ID
    assert second.server and second.server.key and second.server.key.version == 3942
    assert bases == ["DC=contoso,DC=test", "CN=Sites,CN=Configuration,DC=contoso,DC=test", "DC=contoso,DC=test"]
