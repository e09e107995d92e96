"""The on-premises half of the Kerberos module emulator: real changes on the test directory.

Does over LDAPS (and, for the trusted domain object, MS-LSAD) what Set-AzureADKerberosServer and
the Remove- cmdlets do in AD. Keys are random, set through ``unicodePwd`` and never logged,
returned or stored.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ldap3 import MODIFY_REPLACE, SUBTREE, Connection
from ldap3.core import exceptions as ldap_exc
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.utils.conv import escape_filter_chars

from bot.adapters.ldap.connection import LdapEndpoint, LdapSession
from bot.domain.errors import KerberosModuleError
from bot.domain.model import KERBEROS_REALM, SCP_CN

RODC_DCPROMO_CONTROL = ("1.2.840.113556.1.4.1341", True, None)
UAC_DISABLED_NORMAL = 0x202  # ACCOUNTDISABLE | NORMAL_ACCOUNT
UAC_RODC_COMPUTER = 0x04001000  # WORKSTATION_TRUST_ACCOUNT | PARTIAL_SECRETS_ACCOUNT
LSA_HELPER = Path(__file__).with_name("lsa_tdo.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-samba is built for Debian's interpreter
TRUST_FLAT_NAME = "KERBEROS"
# The cloud realm has no AD SID of its own; MS-LSAD requires one, so the emulator uses a fixed one.
TRUST_SID = "S-1-5-21-3623811015-3361044348-30300820"
LSA_TIMEOUT_SECONDS = 60.0
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
# NTSTATUS codes LsarCreateTrustedDomainEx2 answers with, in an operator's words
_LSA_HINTS = {
    "0xC0000035": "the trusted domain object already exists (remove it first)",
    "0xC00000E0": "the domain already exists: a trusted domain object or a KERBEROS$ trust account is left over",
    "0xC000000D": "invalid parameter: the top-level names must include the trust's own name",
    "0xC0000022": "access denied: the admin account lacks Domain Admins rights",
    "0xC000006D": "the admin user name or password was refused",
    "0xC0000078": "the trust's SID is not valid",
    "0xC0000034": "the local LSA socket was not found: is the Samba DC running with this smb.conf?",
}


def _new_key() -> bytes:
    return ('"' + secrets.token_urlsafe(72) + '"').encode("utf-16-le")


class EmulatedOnPremModule:
    """What the module changes in one AD domain."""

    def __init__(
        self,
        endpoint: LdapEndpoint,
        *,
        samba_conf: Path | None = None,
        admin_user: str | None = None,
        admin_password: str | None = None,
    ) -> None:
        """``endpoint`` binds for the LDAP writes; ``admin_user``/``admin_password`` (default: the
        endpoint's) sign in to LSA over the DC's local socket found through ``samba_conf``."""
        self._endpoint = endpoint
        self._session = LdapSession(self._endpoint)
        self._samba_conf = samba_conf
        self._admin_user = admin_user or endpoint.bind_user
        self._admin_password = admin_password or endpoint.bind_password
        base = endpoint.base_dn
        self.krbtgt_dn = f"CN=krbtgt_AzureAD,CN=Users,{base}"
        self.computer_dn = f"CN=AzureADKerberos,OU=Domain Controllers,{base}"
        self.container_dn = f"CN=AzureAD,CN=System,{base}"
        self.scp_dn = f"CN={SCP_CN},{self.container_dn}"
        self.tdo_dn = f"CN={KERBEROS_REALM},CN=System,{base}"

    async def close(self) -> None:
        await self._session.close()

    # -- helpers running in the worker thread -------------------------------------------------

    def _exists(self, conn: Connection, dn: str) -> dict[str, Any] | None:
        try:
            found = self._session.search(conn, dn, "(objectClass=*)", "BASE", ["objectSid", "objectClass"])
        except ldap_exc.LDAPNoSuchObjectResult:
            return None
        return found[0] if found else None

    def _modify(self, conn: Connection, dn: str, changes: dict[str, Any]) -> None:
        self._session.operations += 1
        conn.modify(dn, changes)

    def _add(self, conn: Connection, dn: str, classes: list[str], attrs: dict[str, Any], controls: Any = None) -> None:
        self._session.operations += 1
        conn.add(dn, classes, attrs, controls=controls)

    def _delete_if_present(self, conn: Connection, dn: str) -> bool:
        self._session.operations += 1
        try:
            conn.delete(dn)
        except ldap_exc.LDAPNoSuchObjectResult:
            return False
        return True

    def _create_server(self, conn: Connection) -> None:
        base = self._endpoint.base_dn
        krbtgt = self._exists(conn, self.krbtgt_dn)
        if krbtgt is None:
            # The RODC promotion control makes the DC assign msDS-SecondaryKrbTgtNumber (system-only)
            # and name the account krbtgt_<ID>, as for a read-only DC's krbtgt.
            self._add(
                conn,
                self.krbtgt_dn,
                ["top", "person", "organizationalPerson", "user"],
                {
                    "userAccountControl": UAC_DISABLED_NORMAL,
                    "showInAdvancedViewOnly": "TRUE",
                    "description": "Microsoft Entra Kerberos Server",
                },
                controls=[RODC_DCPROMO_CONTROL],
            )
            krbtgt = self._exists(conn, self.krbtgt_dn)
        if self._exists(conn, self.computer_dn) is None:
            self._add(
                conn,
                self.computer_dn,
                ["top", "person", "organizationalPerson", "user", "computer"],
                {
                    "sAMAccountName": "AzureADKerberos$",
                    "userAccountControl": UAC_RODC_COMPUTER,
                    "msDS-KrbTgtLink": self.krbtgt_dn,
                    "msDS-RevealOnDemandGroup": [f"CN=Allowed RODC Password Replication Group,CN=Users,{base}"],
                    "msDS-NeverRevealGroup": [f"CN=Denied RODC Password Replication Group,CN=Users,{base}"],
                    "showInAdvancedViewOnly": "TRUE",
                },
            )
        computer = self._exists(conn, self.computer_dn)
        found = self._session.search(conn, self.krbtgt_dn, "(objectClass=*)", "BASE", ["msDS-SecondaryKrbTgtNumber"])
        server_id = found[0]["raw"].get("msds-secondarykrbtgtnumber", [b"0"])[0].decode()
        if self._exists(conn, self.container_dn) is None:
            self._add(conn, self.container_dn, ["top", "container"], {"showInAdvancedViewOnly": "TRUE"})
        if self._exists(conn, self.scp_dn) is None:
            assert krbtgt is not None and computer is not None
            self._add(
                conn,
                self.scp_dn,
                ["top", "serviceConnectionPoint"],
                {
                    "keywords": [
                        f"Id={server_id}",
                        f"UserAccountSid={format_sid(krbtgt['raw']['objectsid'][0])}",
                        f"ComputerAccountSid={format_sid(computer['raw']['objectsid'][0])}",
                    ]
                },
            )
        self._modify(conn, self.krbtgt_dn, {"unicodePwd": [(MODIFY_REPLACE, [_new_key()])]})

    def _rotate(self, conn: Connection) -> None:
        self._modify(conn, self.krbtgt_dn, {"unicodePwd": [(MODIFY_REPLACE, [_new_key()])]})

    def _trust_accounts(self, conn: Connection) -> list[str]:
        flat = escape_filter_chars(f"{TRUST_FLAT_NAME}$")
        return [
            e["dn"]
            for e in self._session.search(
                conn, self._endpoint.base_dn, f"(sAMAccountName={flat})", SUBTREE, ["sAMAccountName"]
            )
        ]

    def _delete_tdo(self, conn: Connection) -> None:
        self._delete_if_present(conn, self.tdo_dn)
        # An LDAP delete of the TDO leaves the inbound trust account behind; the next create would fail.
        for dn in self._trust_accounts(conn):
            self._delete_if_present(conn, dn)

    def _delete_server(self, conn: Connection) -> None:
        self._delete_tdo(conn)
        for dn in (self.scp_dn, self.computer_dn, self.krbtgt_dn):
            self._delete_if_present(conn, dn)

    async def _run(self, what: str, operation: Any) -> None:
        try:
            await self._session.run(operation)
        except KerberosModuleError:
            raise
        except Exception as exc:
            raise KerberosModuleError(f"{what} in {self._endpoint.domain_dns_name} failed: {exc}") from exc

    # -- the module's operations -----------------------------------------------------------------

    async def create_server(self) -> None:
        await self._run("Creating the Kerberos server objects", self._create_server)

    async def rotate_key(self) -> None:
        await self._run("Rotating the krbtgt_AzureAD key", self._rotate)

    async def delete_trusted_domain_object(self) -> None:
        await self._run("Removing the trusted domain object", self._delete_tdo)

    async def delete_server(self) -> None:
        await self._run("Removing the Kerberos server", self._delete_server)

    async def create_trusted_domain_object(self, top_level_names: Sequence[str]) -> None:
        domain = self._endpoint.domain_dns_name
        if self._samba_conf is None:
            raise KerberosModuleError(
                f"The emulator cannot create trusted domain objects in {domain}: "
                "no samba_conf is configured for it (kerberos_module.emulator.domains)."
            )
        bad = [n for n in top_level_names if not _DNS_NAME.match(n)]
        if bad:
            raise KerberosModuleError(f"Top-level names must be DNS names such as windows.net, not {bad!r}.")
        request = {
            "action": "create",
            "conf": str(self._samba_conf),
            "user": self._admin_user.split("@")[0].split("\\")[-1],
            "password": self._admin_password,
            "name": KERBEROS_REALM,
            "flat": TRUST_FLAT_NAME,
            "sid": TRUST_SID,
            "trust_password": secrets.token_urlsafe(48),
            "top_level_names": list(top_level_names),
        }
        await self._lsa_helper(request, "LsaCreateTrustedDomainEx")

    async def rotate_trusted_domain_keys(self) -> None:
        """New trust keys on the TDO (current = new, previous = old), as -SetupCloudTrust with
        -RotateServerKey does; see lsa_tdo.py for why this is a system-session modify on Samba."""
        if self._samba_conf is None:
            raise KerberosModuleError(
                f"The emulator cannot rotate the trust keys in {self._endpoint.domain_dns_name}: no samba_conf "
                "is configured for it (kerberos_module.emulator.domains)."
            )
        request = {
            "action": "rotate",
            "conf": str(self._samba_conf),
            "name": KERBEROS_REALM,
            "trust_password": secrets.token_urlsafe(48),
        }
        await self._lsa_helper(request, "Rotating the trust keys")

    async def _lsa_helper(self, request: dict[str, Any], what: str) -> None:
        """Run lsa_tdo.py under Debian's Python (python3-samba) with ``request`` on stdin."""
        domain = self._endpoint.domain_dns_name
        # argv holds no parameter and no shell is involved: the request, secrets included, goes on stdin
        try:
            proc = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON,
                str(LSA_HELPER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise KerberosModuleError(
                f"The emulator cannot run {SYSTEM_PYTHON} for LSA calls ({exc.strerror}): install python3-samba "
                "(scripts/samba-dc.sh install)."
            ) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), LSA_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise KerberosModuleError(f"{what} in {domain} did not finish within {LSA_TIMEOUT_SECONDS:g} s.") from exc
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            answer = {"ok": False, "error": err.decode(errors="replace").strip()[-300:] or "no output"}
        if not answer.get("ok"):
            status = str(answer.get("status", ""))
            hint = _LSA_HINTS.get(status.upper().replace("0X", "0x"), "")
            detail = f"{answer.get('error')} {status}".strip()
            raise KerberosModuleError(f"{what} in {domain} failed: {detail}" + (f" ({hint})" if hint else ""))
