"""Kerberos authentication to the management host: the bot's credential, krb5.conf, and what failures mean.

pypsrp hands the credential to pyspnego, which uses MIT Kerberos through python-gssapi and krb5:

- username + password: pyspnego asks the KDC for a TGT with the password, into a MEMORY cache of
  its own (no file, nothing shared with other processes);
- a client keytab: ``spnego.KerberosKeytab``, the same in-memory TGT from the keytab's key;
- neither: MIT's defaults, i.e. the ticket cache named by KRB5CCNAME (kinit -kt, k5start) or the
  client keytab named by KRB5_CLIENT_KTNAME / ``default_client_keytab_name``.

The only process-global setting is the krb5.conf (KRB5_CONFIG, read by MIT at every library
context, so setting it before the first Kerberos call is enough). ``use_krb5_config`` sets it once,
at start-up, from ``krb5_conf``, and refuses a KRB5_CONFIG that already names another file: two
answers to "which realms and KDCs" in one process would be a mystery to debug. Nothing else in the
bot uses Kerberos (LDAP binds are simple binds over TLS).

Failures come from three libraries (krb5's ``Krb5Error`` for the TGT, gssapi's ``GSSError`` inside
spnego's ``SpnegoError`` for the service ticket, pypsrp's ``AuthenticationError`` when the host
refuses the token); ``kerberos_failure`` reads their codes and texts and says which one it is, for
which host and principal, and what to change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.domain.errors import ConfigurationError

KRB5_CONFIG = "KRB5_CONFIG"


@dataclass(frozen=True)
class KerberosClient:
    """Who the bot is to the KDC and which service principal it asks a ticket for."""

    host: str  # the host part of the SPN (spn_hostname, else the host connected to)
    service: str = "HTTP"
    principal: str | None = None  # None: the ticket cache's or the client keytab's principal
    keytab: str | None = None
    with_password: bool = False

    @property
    def spn(self) -> str:
        return f"{self.service}/{self.host}"

    @property
    def who(self) -> str:
        if self.principal and self.keytab:
            return f"{self.principal} (keytab {self.keytab})"
        if self.keytab:
            return f"the first principal in keytab {self.keytab}"
        if self.principal:
            return self.principal
        return "the principal of the Kerberos ticket cache (KRB5CCNAME) or client keytab (KRB5_CLIENT_KTNAME)"

    @property
    def realm(self) -> str:
        if self.principal and "@" in self.principal:
            return self.principal.rpartition("@")[2]
        return "the default realm"

    @property
    def source(self) -> str:
        if self.keytab:
            return "keytab"
        return "password" if self.with_password else "ticket cache"


def use_krb5_config(path: Path) -> None:
    """Point MIT Kerberos at ``path`` for this process (see the module docstring for why only once)."""
    current = os.environ.get(KRB5_CONFIG)
    if current and Path(current).resolve() != path.resolve():
        raise ConfigurationError(
            f"kerberos_module.remoting.krb5_conf is {path}, but the environment's KRB5_CONFIG names {current}: "
            "keep one of them (both apply to the whole process)"
        )
    os.environ[KRB5_CONFIG] = str(path)


# MIT krb5 error codes (krb5/krb5_err.et, com_err base -1765328384) and the text the libraries print.
_KDC_UNREACHABLE = (-1765328228, "cannot contact any kdc")
_REALM_UNKNOWN = (-1765328230, "cannot find kdc for realm")
_SKEW = (-1765328347, "clock skew too great")
_PREAUTH = (-1765328360, "preauthentication failed")
_BAD_INTEGRITY = (-1765328353, "password incorrect")
_CLIENT_UNKNOWN = (-1765328378, "not found in kerberos database", "client")
_SERVER_UNKNOWN = (-1765328377, "server not found in kerberos database")
_REVOKED = (-1765328366, "credentials have been revoked")
_PASSWORD_EXPIRED = (-1765328361, "password has expired")
_TICKET_EXPIRED = (-1765328352, "ticket expired")
_ETYPE = (-1765328370, "no support for encryption type")
_NO_CREDENTIALS = (
    "no kerberos credentials available",
    "no credentials cache found",
    "in cache collection",
    "no credentials were supplied",
)
_KEYTAB = ("key table file", "no key table entry", "keytab")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _codes_and_text(exc: BaseException) -> tuple[set[int], str]:
    codes: set[int] = set()
    texts: list[str] = []
    for item in _chain(exc):
        for attribute in ("err_code", "min_code"):
            value = getattr(item, attribute, None)
            if isinstance(value, int):
                codes.add(value)
        texts.append(str(item))
    text = " ".join(texts).lower()
    # gssapi's minor codes are unsigned; MIT's table is signed
    codes |= {code - (1 << 32) for code in codes if code > (1 << 31)}
    return codes, text


def kerberos_failure(exc: BaseException, client: KerberosClient, where: str) -> str | None:
    """The actionable message for a Kerberos failure, or None when ``exc`` is not one."""
    codes, text = _codes_and_text(exc)

    def seen(code: int, *needles: str) -> bool:
        return code in codes or all(n in text for n in needles)

    if seen(*_SKEW):
        return (
            f"Kerberos to the management host {where} failed: the clocks of the bot and the domain controller "
            "differ by more than 5 minutes (clock skew too great): synchronise the bot machine's clock with the "
            "domain's time source (NTP)."
        )
    if seen(*_KDC_UNREACHABLE):
        return (
            f"Kerberos to the management host {where} failed: no KDC of {client.realm} answered: check the kdc "
            "entries of that realm in krb5.conf (or DNS SRV records _kerberos._tcp), and that the bot reaches "
            "the domain controllers on port 88 (TCP and UDP)."
        )
    if seen(*_REALM_UNKNOWN):
        return (
            f"Kerberos to the management host {where} failed: krb5.conf names no KDC for {client.realm}: add the "
            "realm under [realms] (the AD domain's DNS name in capitals) or point krb5_conf at a file that has it."
        )
    if seen(*_PREAUTH) or seen(*_BAD_INTEGRITY):
        if client.keytab:
            return (
                f"Kerberos to the management host {where} failed: the KDC refused the key in {client.keytab} for "
                f"{client.principal or 'its first principal'} (the password changed since the keytab was made): "
                "export the keytab again."
            )
        return (
            f"Kerberos to the management host {where} failed: the KDC refused the password of {client.who} "
            "(preauthentication failed): check the password (and that the account is not locked out)."
        )
    if seen(*_SERVER_UNKNOWN):
        return (
            f"Kerberos to the management host {where} failed: the KDC knows no service principal {client.spn}: "
            "connect by the host's DNS name (not an IP address or an alias), or set spn_hostname to the name the "
            f"host's SPN is registered under (setspn -Q {client.service}/<name>)."
        )
    if seen(*_CLIENT_UNKNOWN):
        return (
            f"Kerberos to the management host {where} failed: the KDC does not know {client.who}: check the "
            "user name (principal form svc@CONTOSO.COM, the realm in capitals)."
        )
    if seen(*_REVOKED):
        return f"Kerberos to the management host {where} failed: the account {client.who} is disabled or locked out."
    if seen(*_PASSWORD_EXPIRED):
        return (
            f"Kerberos to the management host {where} failed: the password of {client.who} has expired: set a "
            "new one (and update the bot's secret or keytab)."
        )
    if seen(*_TICKET_EXPIRED):
        return (
            f"Kerberos to the management host {where} failed: the ticket in the cache has expired: renew it "
            "(kinit -kt, or let k5start keep it fresh), or give the bot a keytab."
        )
    if seen(*_ETYPE):
        return (
            f"Kerberos to the management host {where} failed: the KDC and the bot share no encryption type for "
            f"{client.spn} or {client.who}: enable AES for the accounts (msDS-SupportedEncryptionTypes)."
        )
    if any(needle in text for needle in _NO_CREDENTIALS):
        return (
            f"Kerberos to the management host {where} failed: no Kerberos credentials for {client.who}: run "
            "kinit -kt <keytab> <principal> for the bot's user (KRB5CCNAME names the cache), set keytab, or "
            "give username and password."
        )
    if any(needle in text for needle in _KEYTAB) and client.keytab:
        return (
            f"Kerberos to the management host {where} failed: the keytab {client.keytab} cannot be used for "
            f"{client.principal or 'its first principal'}: check that it holds that principal (klist -kt)."
        )
    if re.search(r"kerberos.*(not available|unavailable)|gssapi.*not (installed|available)", text):
        return (
            f"Kerberos to the management host {where} is not available in this installation: install "
            "python-gssapi (pip install 'pypsrp[kerberos]', built against libkrb5-dev)."
        )
    return None


__all__ = ["KRB5_CONFIG", "KerberosClient", "kerberos_failure", "use_krb5_config"]
