"""What a failed remoting call means, in the words of what to fix: pypsrp, requests and spnego
exceptions, one after the other from the most specific."""

from __future__ import annotations

import requests
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPSRPOperation,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.adapters.kerberos_module.remoting.calls import RemotingTarget, ScriptCall
from bot.adapters.kerberos_module.remoting.winrm_kerberos import kerberos_failure
from bot.domain.errors import KerberosModuleError


def transport_failure(exc: Exception, target: RemotingTarget, call: ScriptCall, timeout: float) -> KerberosModuleError:
    """pypsrp, requests and spnego failures -> what is wrong with the connection and how to fix it."""
    t = target
    where = t.where
    if isinstance(exc, requests.exceptions.SSLError):
        return KerberosModuleError(
            f"TLS with the management host {where} failed (certificate not trusted, expired or for another "
            "name): set cert_validation to the CA bundle that signed the WinRM certificate and connect by the "
            "name in that certificate."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return KerberosModuleError(
            f"The management host {where} did not accept a connection within {t.connect_timeout_seconds:g} s: "
            "check the host name, that it is up, and the firewall (WinRM HTTPS listens on 5986)."
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return KerberosModuleError(
            f"The management host {where} stopped answering during {call.label} (limit {timeout:g} s); it may "
            "still be running there, so read the status before retrying."
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return KerberosModuleError(
            f"Cannot connect to the management host {where} (connection refused or reset): check that WinRM "
            "has an HTTPS listener on that port (winrm enumerate winrm/config/listener) and the firewall."
        )
    if t.uses_kerberos and (message := kerberos_failure(exc, t.kerberos, where)) is not None:
        return KerberosModuleError(message)
    if isinstance(exc, AuthenticationError) and t.auth == "kerberos":
        return KerberosModuleError(
            f"The management host {where} refused the Kerberos ticket for {t.kerberos.spn} of "
            f"{t.kerberos.who}: check that this SPN belongs to the host's computer account (setspn -Q "
            f"{t.kerberos.spn}; registered on another account, the host cannot read the ticket) and that "
            "the account may use remoting there."
        )
    if isinstance(exc, AuthenticationError):
        return KerberosModuleError(
            f"The management host {where} refused the credentials of {t.username or 'the current user'} "
            f"({t.auth}): check the user name and password, and that the account may use remoting there."
        )
    if isinstance(exc, WSManFaultError) and ps.SHELL_MEMORY.search(f"{exc.reason} {exc}"):
        return KerberosModuleError(f"{call.label} on {where} failed: {ps.SHELL_MEMORY_MESSAGE}")
    if isinstance(exc, WSManFaultError):
        if exc.code == 5 or "access is denied" in str(exc.reason or "").lower():
            return KerberosModuleError(
                f"The management host {where} denied remoting to {t.username or 'the current user'}: add it to "
                "Remote Management Users (or allow it in the JEA endpoint's role)."
            )
        return KerberosModuleError(f"WinRM on {where} answered with a fault ({exc.code}): {exc.reason}")
    if isinstance(exc, WinRMTransportError):
        return KerberosModuleError(
            f"WinRM on {where} answered HTTP {exc.code}: check the port, path and that the WinRM service runs."
        )
    if isinstance(exc, InvalidPSRPOperation | WinRMError):
        return KerberosModuleError(
            f"PowerShell Remoting on {where} refused the session ({exc}): check configuration_name "
            f"({t.configuration_name}) and the endpoint's permissions."
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return KerberosModuleError(f"Remoting to {where} failed ({type(exc).__name__}).")
    # spnego (Kerberos without a ticket, unknown realm), requests_credssp...
    return KerberosModuleError(
        f"Remoting to {where} failed during authentication or transport ({type(exc).__name__}): check auth "
        f"({t.auth}) and its prerequisites (a Kerberos ticket or keytab for kerberos)."
    )
