"""Kerberos principals on a test Samba DC for the remoting tests: a WinRM service and a bot user.

Each ``kerberos_principals(dc, work_dir)`` creates, under a fresh random tag so that test runs
sharing a DC never collide,

- ``svc-winrm-<tag>``: a service account with the SPN ``HTTP/mgmt-<tag>.<realm>``, AES only
  (msDS-SupportedEncryptionTypes 24, as for a real host's account), whose keys
  ``samba-tool domain exportkeytab`` writes to ``service.keytab`` for the fake WinRM acceptor;
- ``kb-<tag>``: the bot's connection account, with a password and a client keytab (``client.keytab``);

and a ``krb5.conf`` for the realm whose only KDC is the DC (no DNS, no reverse lookups, so the SPN
is exactly the name asked for). ``remove()`` deletes both accounts again.

The DC's sam.ldb is written locally by samba-tool and ldbmodify (root; samba runs beside them),
the way ``scripts/samba-dc.sh`` seeds it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

from tests.support.samba import SambaDC

SAMBA_TOOL = "/usr/bin/samba-tool"
LDBMODIFY = "/usr/bin/ldbmodify"


@dataclass(frozen=True)
class KerberosPrincipals:
    dc: SambaDC
    tag: str
    service_account: str
    spn_host: str  # mgmt-<tag>.contoso.test: the name the SPN is registered under
    user: str  # kb-<tag>
    password: str
    krb5_conf: Path
    service_keytab: Path
    client_keytab: Path

    @property
    def realm(self) -> str:
        return self.dc.realm

    @property
    def principal(self) -> str:
        return f"{self.user}@{self.realm}"

    @property
    def spn(self) -> str:
        return f"HTTP/{self.spn_host}"

    async def remove(self) -> None:
        for account in (self.service_account, self.user):
            await _run(SAMBA_TOOL, "user", "delete", account, "-s", str(self.dc.smb_conf), check=False)


def krb5_conf_text(realm: str, kdc: str) -> str:
    """A krb5.conf for one realm and KDC; names are used as given (no DNS canonicalisation)."""
    return f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = false

[realms]
    {realm} = {{
        kdc = {kdc}
    }}

[domain_realm]
    .{realm.lower()} = {realm}
    {realm.lower()} = {realm}
"""


async def _run(*argv: str, check: bool = True, stdin: bytes | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate(stdin)
    text = output.decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed (exit {proc.returncode}):\n{text}")
    return text


async def kerberos_principals(dc: SambaDC, work_dir: Path) -> KerberosPrincipals:
    tag = secrets.token_hex(3)
    conf = str(dc.smb_conf)
    found = KerberosPrincipals(
        dc=dc,
        tag=tag,
        service_account=f"svc-winrm-{tag}",
        spn_host=f"mgmt-{tag}.{dc.name}",
        user=f"kb-{tag}",
        password=f"Kb-{secrets.token_urlsafe(12)}-1a!",
        krb5_conf=work_dir / "krb5.conf",
        service_keytab=work_dir / "service.keytab",
        client_keytab=work_dir / "client.keytab",
    )
    found.krb5_conf.write_text(krb5_conf_text(dc.realm, f"{dc.host}:88"))
    service_password = f"Svc-{secrets.token_urlsafe(16)}-1a!"
    await _run(SAMBA_TOOL, "user", "add", found.service_account, service_password, "-s", conf)
    await _run(SAMBA_TOOL, "user", "add", found.user, found.password, "-s", conf)
    try:
        ldif = (
            f"dn: CN={found.service_account},CN=Users,{dc.base_dn}\n"
            "changetype: modify\n"
            "replace: msDS-SupportedEncryptionTypes\n"
            "msDS-SupportedEncryptionTypes: 24\n"
        )
        change = work_dir / "aes-only.ldif"
        change.write_text(ldif)
        await _run(LDBMODIFY, "-H", str(dc.directory / "private" / "sam.ldb"), str(change))
        await _run(SAMBA_TOOL, "spn", "add", found.spn, found.service_account, "-s", conf)
        for keytab, principal in ((found.service_keytab, found.spn), (found.client_keytab, found.principal)):
            await _run(SAMBA_TOOL, "domain", "exportkeytab", str(keytab), f"--principal={principal}", "-s", conf)
    except BaseException:
        await found.remove()
        raise
    return found


async def kinit_keytab(principals: KerberosPrincipals, ccache: Path) -> None:
    """``kinit -kt``: the ticket cache an operator (or k5start) would keep for the bot."""
    env_file = principals.krb5_conf
    await _run(
        "/usr/bin/env",
        f"KRB5_CONFIG={env_file}",
        f"KRB5CCNAME=FILE:{ccache}",
        "/usr/bin/kinit",
        "-kt",
        str(principals.client_keytab),
        principals.principal,
    )


__all__ = ["KerberosPrincipals", "kerberos_principals", "kinit_keytab", "krb5_conf_text"]
