"""The AD adapter: reads the Entra Kerberos server's objects from a domain over LDAPS.

One subtree search finds everything (computer, krbtgt accounts, trusted domain object, service
connection point); the map from DSA invocation id to DC host name (for KeyUpdatedFrom) comes from
the configuration partition and is cached. The attributes that are not plain values are decoded in
``wire_formats``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPNoSuchObjectResult
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.utils.conv import escape_filter_chars

from bot.adapters.ldap.connection import LdapEndpoint, LdapSession
from bot.adapters.ldap.wire_formats import (
    TRUST_AUTH_ATTIDS,
    UNICODE_PWD_ATTID,
    ReplEntry,
    parse_forest_trust_top_level_names,
    parse_repl_attribute_metadata_xml,
    parse_repl_property_metadata,
)
from bot.domain.errors import DirectoryDataError, DirectoryError
from bot.domain.model import (
    KERBEROS_REALM,
    SCP_CN,
    KeyMetadata,
    OnPremKerberosServer,
    OnPremState,
    ServiceConnectionPoint,
    TrustedDomainObject,
)

log = logging.getLogger(__name__)
COMPUTER_CN = "AzureADKerberos"  # the module's name; the object may sit in any OU
_DSA_CACHE_SECONDS = 3600.0
_DSA_MISS_RETRY_SECONDS = 300.0

READ_ATTRIBUTES = (
    "objectClass",
    "cn",
    "sAMAccountName",
    "objectSid",
    "msDS-KrbTgtLink",
    "msDS-SecondaryKrbTgtNumber",
    "msDS-KeyVersionNumber",
    "replPropertyMetaData",
    "msDS-ReplAttributeMetaData",
    "trustPartner",
    "trustDirection",
    "trustType",
    "trustAttributes",
    "msDS-TrustForestTrustInfo",
    "whenCreated",
    "keywords",
)


def kerberos_objects_filter(computer_cn: str = COMPUTER_CN, realm: str = KERBEROS_REALM, scp_cn: str = SCP_CN) -> str:
    """One OR filter for the computer, every RODC-style krbtgt, the TDO and the SCP.

    The values are constants today, but they are escaped anyway so that nothing ever reaches a
    filter unescaped (a ``*`` or ``)`` would otherwise widen the search).
    """
    return (
        f"(|(&(objectClass=computer)(cn={escape_filter_chars(computer_cn)}))"
        "(msDS-SecondaryKrbTgtNumber=*)"
        f"(&(objectClass=trustedDomain)(trustPartner={escape_filter_chars(realm)}))"
        f"(&(objectClass=serviceConnectionPoint)(cn={escape_filter_chars(scp_cn)})))"
    )


def _str(raw: dict[str, list[bytes]], name: str) -> str | None:
    values = raw.get(name.lower())
    return values[0].decode("utf-8") if values else None


def _int(raw: dict[str, list[bytes]], name: str) -> int | None:
    value = _str(raw, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not an integer") from exc


def _generalized_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _classes(raw: dict[str, list[bytes]]) -> set[str]:
    return {v.decode().lower() for v in raw.get("objectclass", [])}


def _parent(dn: str) -> str:
    return dn.split(",", 1)[1] if "," in dn else ""


class LdapDirectory:
    """Implements ``bot.domain.ports.ActiveDirectory`` for one domain."""

    def __init__(self, endpoint: LdapEndpoint, *, configuration_dn: str | None = None) -> None:
        self._endpoint = endpoint
        self._session = LdapSession(endpoint)
        self._configuration_dn = configuration_dn or f"CN=Configuration,{endpoint.base_dn}"
        self._dsa_hosts: dict[str, str] = {}  # invocation id (and NTDS Settings DN) -> DC host name
        self._dsa_loaded_at = float("-inf")  # never loaded (monotonic time may be small after boot)

    @property
    def domain_dns_name(self) -> str:
        return self._endpoint.domain_dns_name

    @property
    def operations(self) -> int:
        return self._session.operations

    @property
    def endpoint(self) -> LdapEndpoint:
        return self._endpoint

    async def read_kerberos_objects(self) -> OnPremState:
        return await self._read_counted(self._session)

    async def _read_counted(self, session: LdapSession) -> OnPremState:
        state, operations = await session.run_counted(lambda conn: self._read(session, conn))
        return replace(state, ldap_operations=operations)  # counted with the bind, if one was needed

    def _read(self, session: LdapSession, conn: Connection) -> OnPremState:
        entries = session.search(conn, self._endpoint.base_dn, kerberos_objects_filter(), SUBTREE, READ_ATTRIBUTES)
        try:
            return self._state(session, conn, entries)
        except (ValueError, KeyError, IndexError, UnicodeDecodeError, ET.ParseError) as exc:
            raise DirectoryDataError(
                f"The Kerberos server objects in {self.domain_dns_name} are not shaped as the module creates "
                f"them ({exc})."
            ) from exc

    def _state(self, session: LdapSession, conn: Connection, entries: list[dict[str, Any]]) -> OnPremState:
        computer = None
        krbtgts: dict[str, dict[str, Any]] = {}
        tdo = scp = None
        for entry in entries:
            classes = _classes(entry["raw"])
            if "trusteddomain" in classes:
                tdo = entry
            elif "serviceconnectionpoint" in classes:
                scp = entry
            elif "computer" in classes:
                computer = entry
            elif "user" in classes:
                krbtgts[entry["dn"].lower()] = entry
        server = None
        if computer is not None:
            link = _str(computer["raw"], "msDS-KrbTgtLink")
            krbtgt = krbtgts.get(link.lower()) if link else None
            server = OnPremKerberosServer(
                computer_dn=computer["dn"],
                krbtgt_dn=krbtgt["dn"] if krbtgt else None,
                server_id=_int(krbtgt["raw"], "msDS-SecondaryKrbTgtNumber") if krbtgt else None,
                display_name=_str(krbtgt["raw"], "sAMAccountName") if krbtgt else None,
                key=self._key_metadata(session, conn, krbtgt["raw"]) if krbtgt else None,
            )
        return OnPremState(
            domain_dns_name=self.domain_dns_name,
            server=server,
            trusted_domain=self._tdo(tdo) if tdo else None,
            service_connection_point=ServiceConnectionPoint(
                scp["dn"], tuple(v.decode("utf-8") for v in scp["raw"].get("keywords", []))
            )
            if scp
            else None,
            read_from=session.answering_host(),
        )

    def _key_metadata(self, session: LdapSession, conn: Connection, raw: dict[str, list[bytes]]) -> KeyMetadata | None:
        entry: ReplEntry | None = None
        # Windows serves the XML form (with the DSA's DN); Samba only the binary one: prefer XML
        xml_values = raw.get("msds-replattributemetadata")
        if xml_values:
            entry = parse_repl_attribute_metadata_xml([v.decode("utf-8") for v in xml_values]).get("unicodepwd")
        if entry is None and raw.get("replpropertymetadata"):
            entry = next(
                (
                    e
                    for e in parse_repl_property_metadata(raw["replpropertymetadata"][0])
                    if e.attid == UNICODE_PWD_ATTID
                ),
                None,
            )
        if entry is None:
            return None  # no key set yet
        return KeyMetadata(
            version=entry.originating_usn,
            updated_on=entry.originating_time,
            updated_from=self._dc_name(session, conn, entry),
            kvno=_int(raw, "msDS-KeyVersionNumber"),
        )

    def _dc_name(self, session: LdapSession, conn: Connection, entry: ReplEntry) -> str:
        keys = [entry.originating_invocation_id.lower()]
        if entry.originating_dsa_dn:
            keys.insert(0, entry.originating_dsa_dn.lower())
        age = time.monotonic() - self._dsa_loaded_at
        unknown = not any(k in self._dsa_hosts for k in keys)
        # an unknown DC (new, or demoted since) reloads the map, but at most every few minutes so that a
        # demoted DC's invocation id does not cost a search on every status
        if age > _DSA_CACHE_SECONDS or (unknown and age > _DSA_MISS_RETRY_SECONDS):
            self._load_dsa_map(session, conn)
        for key in keys:
            if key in self._dsa_hosts:
                return self._dsa_hosts[key]
        return entry.originating_invocation_id

    def _load_dsa_map(self, session: LdapSession, conn: Connection) -> None:
        def sites() -> list[dict[str, Any]]:
            return session.search(
                conn,
                f"CN=Sites,{self._configuration_dn}",
                "(|(objectClass=nTDSDSA)(objectClass=server))",
                SUBTREE,
                ["objectClass", "invocationId", "dNSHostName"],
            )

        try:
            entries = sites()
        except LDAPNoSuchObjectResult:
            # The configured forest root's configuration partition is not on this DC: in a real forest
            # every DC holds it, so the configuration is off (or, in the sandbox, the "child" is a forest
            # of its own). The DC itself says which partition it holds; use that, once and for all.
            root = session.search(conn, "", "(objectClass=*)", BASE, ["configurationNamingContext"])
            found = _str(root[0]["raw"], "configurationNamingContext") if root else None
            if not found or found.lower() == self._configuration_dn.lower():
                raise
            log.warning(
                "%s: %s is not on its DCs; they hold %s (is forest_root right?)",
                self.domain_dns_name,
                self._configuration_dn,
                found,
            )
            self._configuration_dn = found
            entries = sites()
        hosts = {e["dn"].lower(): _str(e["raw"], "dNSHostName") for e in entries if "server" in _classes(e["raw"])}
        mapping: dict[str, str] = {}
        for e in entries:
            if "ntdsdsa" not in _classes(e["raw"]):
                continue
            host = hosts.get(_parent(e["dn"]).lower())
            invocation = e["raw"].get("invocationid")
            if host and invocation:
                mapping[str(uuid.UUID(bytes_le=invocation[0]))] = host
                mapping[e["dn"].lower()] = host
        self._dsa_hosts = mapping
        self._dsa_loaded_at = time.monotonic()

    @staticmethod
    def _tdo(entry: dict[str, Any]) -> TrustedDomainObject:
        raw = entry["raw"]
        info = raw.get("msds-trustforesttrustinfo")
        changes: list[ReplEntry] = []
        xml_values = raw.get("msds-replattributemetadata")
        if xml_values:
            meta = parse_repl_attribute_metadata_xml([v.decode("utf-8") for v in xml_values])
            changes = [meta[n] for n in ("trustauthincoming", "trustauthoutgoing") if n in meta]
        if not changes and raw.get("replpropertymetadata"):
            changes = [
                e for e in parse_repl_property_metadata(raw["replpropertymetadata"][0]) if e.attid in TRUST_AUTH_ATTIDS
            ]
        latest = max(changes, key=lambda e: (e.originating_time, e.version, e.originating_usn), default=None)
        return TrustedDomainObject(
            dn=entry["dn"],
            partner=_str(raw, "trustPartner") or KERBEROS_REALM,
            direction=_int(raw, "trustDirection") or 0,
            trust_type=_int(raw, "trustType") or 0,
            attributes=_int(raw, "trustAttributes") or 0,
            created=_generalized_time(_str(raw, "whenCreated")),
            # MS-LSAD requires the trust's own name among the names; operators care about the others
            top_level_names=tuple(
                n for n in (parse_forest_trust_top_level_names(info[0]) if info else ()) if n.upper() != KERBEROS_REALM
            ),
            keys_updated_on=latest.originating_time if latest else None,
            keys_change=(sum(e.version for e in changes), latest.originating_usn) if latest else None,
        )

    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        async def one(url: str) -> tuple[str, int | None]:
            session = LdapSession(self._endpoint, urls=[url])  # one DC each: no failover to another
            try:
                state = await self._read_counted(session)
                key = state.server.key if state.server else None
                return url, key.version if key else None
            except DirectoryError:
                return url, None
            finally:
                await session.close()

        return dict(await asyncio.gather(*(one(u) for u in self._endpoint.ldap_urls)))

    async def ping(self) -> str:
        """A cheap RootDSE read; returns the DC that answered."""

        def read_root(conn: Connection) -> str:
            self._session.search(conn, "", "(objectClass=*)", BASE, ["dnsHostName"])
            return self._session.answering_host()

        return await self._session.run(read_root)

    async def close(self) -> None:
        await self._session.close()

    @staticmethod
    def format_sid(raw: bytes) -> str:
        return str(format_sid(raw))
