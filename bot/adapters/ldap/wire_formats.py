"""AD's attributes that are not plain values, decoded: replication metadata (binary from Samba and the
wire, XML from Windows' constructed attribute) and a forest trust's top-level names. Each parser raises
``ValueError`` on data that does not add up."""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

UNICODE_PWD_ATTID = 0x9005A
TRUST_AUTH_ATTIDS = (0x90081, 0x90087)  # trustAuthIncoming, trustAuthOutgoing
_NT_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReplEntry:
    """Replication metadata of one attribute (MS-DRSR PROPERTY_META_DATA_EXT)."""

    attid: int
    version: int
    originating_time: datetime
    originating_invocation_id: str
    originating_usn: int
    local_usn: int
    originating_dsa_dn: str | None = None


def parse_repl_property_metadata(blob: bytes) -> list[ReplEntry]:
    """The binary ``replPropertyMetaData``: a 16-byte header, then 48-byte entries."""
    if len(blob) < 16:
        raise ValueError("replPropertyMetaData shorter than its header")
    version, _, count, _ = struct.unpack_from("<IIII", blob, 0)
    if version != 1 or len(blob) < 16 + 48 * count:
        raise ValueError(f"unexpected replPropertyMetaData (version {version}, {count} entries, {len(blob)} bytes)")
    entries = []
    for i in range(count):
        attid, ver, seconds, invocation, o_usn, l_usn = struct.unpack_from("<IIQ16sqq", blob, 16 + 48 * i)
        entries.append(
            ReplEntry(
                attid, ver, _NT_EPOCH + timedelta(seconds=seconds), str(uuid.UUID(bytes_le=invocation)), o_usn, l_usn
            )
        )
    return entries


def parse_repl_attribute_metadata_xml(values: Sequence[str]) -> dict[str, ReplEntry]:
    """The constructed ``msDS-ReplAttributeMetaData`` (Windows): one XML fragment per attribute."""
    found: dict[str, ReplEntry] = {}
    for value in values:
        node = ET.fromstring(value.replace("\x00", ""))

        def text(tag: str, node: ET.Element = node) -> str:
            return (node.findtext(tag) or "").strip()

        name = text("pszAttributeName")
        stamp = text("ftimeLastOriginatingChange").replace("Z", "+00:00")
        found[name.lower()] = ReplEntry(
            attid=0,
            version=int(text("dwVersion") or 0),
            originating_time=datetime.fromisoformat(stamp).astimezone(UTC),
            originating_invocation_id=text("uuidLastOriginatingDsaInvocationID").lower(),
            originating_usn=int(text("usnOriginatingChange") or 0),
            local_usn=int(text("usnLocalChange") or 0),
            originating_dsa_dn=text("pszLastOriginatingDsaDN") or None,
        )
    return found


FOREST_TRUST_TOP_LEVEL_NAME = 0
FOREST_TRUST_TOP_LEVEL_NAME_EX = 1
FOREST_TRUST_DOMAIN_INFO = 2


def parse_forest_trust_top_level_names(blob: bytes) -> tuple[str, ...]:
    """Top-level names (type 0 records only) from ``msDS-TrustForestTrustInfo`` (MS-ADTS 6.1.6.9.3).

    Layout: version u32, record count u32, then per record: length u32 (of what follows), flags u32,
    timestamp u64, type u8, and for a name record a u32 length and the UTF-8 name. Raises
    ``ValueError`` on a blob that does not add up, rather than returning half a list.
    """
    if not blob:
        return ()
    if len(blob) < 8:
        raise ValueError(f"forest trust info of {len(blob)} bytes is shorter than its header")
    version, count = struct.unpack_from("<II", blob, 0)
    if version != 1:
        raise ValueError(f"forest trust info version {version} is not 1")
    offset, names = 8, []
    for index in range(count):
        if offset + 4 > len(blob):
            raise ValueError(f"forest trust record {index} starts past the end of the blob")
        (length,) = struct.unpack_from("<I", blob, offset)
        record = blob[offset + 4 : offset + 4 + length]
        offset += 4 + length
        if len(record) != length or length < 13:
            raise ValueError(f"forest trust record {index} is truncated ({len(record)} of {length} bytes)")
        if record[12] == FOREST_TRUST_TOP_LEVEL_NAME:
            if length < 17:
                raise ValueError(f"forest trust record {index} has no name length")
            (name_length,) = struct.unpack_from("<I", record, 13)
            if 17 + name_length > length:
                raise ValueError(f"forest trust record {index}: name longer than its record")
            names.append(record[17 : 17 + name_length].decode("utf-8"))
    return tuple(names)
