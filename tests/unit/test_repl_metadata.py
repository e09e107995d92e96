import struct
import uuid
from datetime import UTC, datetime

import pytest

from bot.adapters.ad_ldap import (
    UNICODE_PWD_ATTID,
    parse_forest_trust_top_level_names,
    parse_repl_attribute_metadata_xml,
    parse_repl_property_metadata,
)

INVOCATION = uuid.UUID("72b40677-350d-4de9-9725-da3ec274efd4")


def blob(*entries: tuple[int, int, int, int]) -> bytes:
    """PROPERTY_META_DATA_EXT_VECTOR as Samba and Windows store it in replPropertyMetaData."""
    head = struct.pack("<IIII", 1, 0, len(entries), 0)
    body = b"".join(
        struct.pack("<IIQ16sqq", attid, version, seconds, INVOCATION.bytes_le, usn, usn)
        for attid, version, seconds, usn in entries
    )
    return head + body


def test_binary_metadata_gives_usn_time_and_dsa() -> None:
    seconds = int((datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC) - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds())
    entries = parse_repl_property_metadata(blob((0x0, 1, seconds, 10), (UNICODE_PWD_ATTID, 3, seconds, 53325)))
    pwd = next(e for e in entries if e.attid == UNICODE_PWD_ATTID)
    assert pwd.originating_usn == 53325 and pwd.version == 3
    assert pwd.originating_time == datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC)
    assert pwd.originating_invocation_id == str(INVOCATION)


def test_truncated_binary_metadata_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_repl_property_metadata(blob((UNICODE_PWD_ATTID, 1, 1, 1))[:40])


def test_windows_xml_metadata() -> None:
    xml = (
        "<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>unicodePwd</pszAttributeName>\n"
        "\t<ftimeLastOriginatingChange>2022-02-24T09:03:15Z</ftimeLastOriginatingChange>\n"
        "\t<dwVersion>7</dwVersion>\n\t<usnOriginatingChange>212621</usnOriginatingChange>\n"
        "\t<usnLocalChange>212621</usnLocalChange>\n"
        "\t<uuidLastOriginatingDsaInvocationID>72B40677-350D-4DE9-9725-DA3EC274EFD4</uuidLastOriginatingDsaInvocationID>\n"
        "\t<pszLastOriginatingDsaDN>CN=NTDS Settings,CN=DS-AAD-AUTH,CN=Servers,CN=Default-First-Site-Name,"
        "CN=Sites,CN=Configuration,DC=aadsqlmi,DC=net</pszLastOriginatingDsaDN>\n</DS_REPL_ATTR_META_DATA>\n\x00"
    )
    entry = parse_repl_attribute_metadata_xml([xml])["unicodepwd"]
    assert entry.originating_usn == 212621
    assert entry.originating_time == datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC)
    assert entry.originating_invocation_id == str(INVOCATION)
    assert entry.originating_dsa_dn and entry.originating_dsa_dn.startswith("CN=NTDS Settings,CN=DS-AAD-AUTH")


def _tln_record(name: str, record_type: int = 0) -> bytes:
    data = struct.pack("<I", len(name)) + name.encode()
    record = struct.pack("<IQ", 0, 0) + bytes([record_type]) + data
    return struct.pack("<I", len(record)) + record


def test_forest_trust_info_top_level_names_only() -> None:
    domain_info = struct.pack("<IQ", 0, 0) + bytes([2]) + b"\x00" * 20
    info = (
        struct.pack("<II", 1, 3)
        + _tln_record("windows.net")
        + _tln_record("usgovcloudapi.net")
        + (struct.pack("<I", len(domain_info)) + domain_info)
    )
    assert parse_forest_trust_top_level_names(info) == ("windows.net", "usgovcloudapi.net")
    assert parse_forest_trust_top_level_names(b"") == ()
