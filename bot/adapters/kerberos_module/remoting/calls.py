"""What the remoting adapter sends: the management host (target), the module's credentials, the
deadlines, and each call as one constant script with bound parameters (``run.ps1``) or, with JEA,
one of the endpoint's functions."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell
from spnego import KerberosKeytab

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.adapters.kerberos_module.remoting.winrm_kerberos import KerberosClient


def powershell_script(name: str) -> str:
    """One of the adapter's scripts, from ``scripts/`` (package data), read once at import."""
    return (files("bot.adapters.kerberos_module.remoting") / "scripts" / name).read_text(encoding="utf-8")


Auth = Literal["negotiate", "kerberos", "ntlm", "credssp", "basic"]

# Loggers that write request bodies or authentication tokens at DEBUG/INFO.
TRANSPORT_LOGGERS = ("pypsrp", "requests_credssp", "spnego", "urllib3", "requests_ntlm", "requests_kerberos")

RUN_SCRIPT = powershell_script("run.ps1")

MODULE_SCRIPT = powershell_script("module.ps1")

READ_MANY_SCRIPT = powershell_script("read_many.ps1")


def quiet_transport_loggers() -> None:
    """The transport libraries log SOAP bodies, PSRP messages and auth tokens at DEBUG: never let them."""
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class RemotingTarget:
    """How to reach the management host."""

    host: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int = 5986
    ssl: bool = True
    cert_validation: bool | str = True  # or the path of a CA bundle
    auth: Auth = "negotiate"
    configuration_name: str = "Microsoft.PowerShell"  # or a session configuration registered for the bot
    encryption: Literal["auto", "always", "never"] = "auto"
    connect_timeout_seconds: float = 10.0
    path: str = "wsman"
    keytab: str | None = None  # kerberos/negotiate: a client keytab instead of the password
    spn_hostname: str | None = None  # the SPN's host when ``host`` is an IP address or an alias
    spn_service: str = "HTTP"  # as Windows' own WinRM client asks: HTTP/<host>

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uses_kerberos(self) -> bool:
        return self.auth in ("kerberos", "negotiate")

    @property
    def kerberos(self) -> KerberosClient:
        return KerberosClient(
            host=self.spn_hostname or self.host,
            service=self.spn_service,
            principal=self.username,
            keytab=self.keytab,
            with_password=self.password is not None,
        )

    def credential(self) -> tuple[str | KerberosKeytab | None, str | None]:
        """What pypsrp passes to pyspnego as user name and password: a keytab is a credential object."""
        if self.keytab is not None and self.uses_kerberos:
            return KerberosKeytab(keytab=self.keytab, principal=self.username), None
        return self.username, self.password


@dataclass(frozen=True)
class ModuleCredentials:
    """The module's -DomainCredential and -CloudCredential (the cloud one must not need interactive MFA)."""

    domain_user: str
    domain_password: str = field(repr=False)
    cloud_user: str
    cloud_password: str = field(repr=False)


@dataclass(frozen=True)
class RemotingSecrets:
    """What the bot sends that can be rotated at its source: the WinRM password and the module's credentials
    (None with a keytab, or with a JEA endpoint)."""

    password: str | None = field(repr=False)
    credentials: ModuleCredentials | None


@dataclass(frozen=True)
class Timeouts:
    """Seconds per kind of call; a rotation writes AD and Entra and can take a minute."""

    read: float = 60.0
    change: float = 180.0
    check: float = 30.0
    poll: float = 20.0  # one WSMan Receive waits at most this long on the host


@dataclass(frozen=True)
class ModuleInfo:
    version: str | None
    powershell: str | None
    computer: str | None


@dataclass(frozen=True)
class ScriptCall:
    """A script (or, on a JEA endpoint, one command) and its bound parameters: what the pipeline
    carries to the host."""

    script: str  # the script text, or the command's name when ``command``
    parameters: Mapping[str, Any] = field(repr=False)
    label: str  # for messages and logs: the cmdlet and its parameter names, never values
    command: bool = False  # a JEA endpoint runs no script: only the functions its role capability exposes

    @property
    def has_secrets(self) -> bool:
        """SecureStrings need the session key, exchanged once the pool is open."""
        return any(isinstance(value, PSCredential) for value in self.parameters.values())


@dataclass
class ScriptResult:
    output: list[Any]
    errors: list[str]
    warnings: list[str]
    information: list[str]
    failed: bool


def _credential(user: str, password: str) -> PSCredential:
    """Serialized with the password as a SecureString (needs the pool's session key)."""
    return PSCredential(username=user, password=password)  # type: ignore[no-untyped-call]  # pypsrp's kwargs init


def script_call(
    invocation: ps.Invocation,
    credentials: ModuleCredentials | None,
    *,
    min_module_version: str,
    endpoint: int | None,
    report: bool = False,
) -> ScriptCall:
    """RUN_SCRIPT with the invocation's values as parameters: nothing a user typed touches the script text."""
    parameters: dict[str, Any] = {
        "Cmdlet": invocation.cmdlet,
        "Parameters": {
            name: (list(value) if not isinstance(value, str) else value)
            for name, value in invocation.parameters.items()
        },
        "Switches": list(invocation.switches),
        "MinimumVersion": min_module_version,
        "Report": report,
    }
    if credentials is not None:
        parameters["DomainCredential"] = _credential(credentials.domain_user, credentials.domain_password)
        parameters["CloudCredential"] = _credential(credentials.cloud_user, credentials.cloud_password)
    if endpoint is not None:
        parameters["Endpoint"] = endpoint
    return ScriptCall(RUN_SCRIPT, parameters, invocation.describe())


MOST_RUNSPACES = 64  # read_many.ps1's and Get-KerberosBotServers' ValidateRange
FEWEST_RUNSPACES = 8  # a handful of domains read in one round
WINRM_SHELL_MEMORY_MB = 1024  # MaxMemoryPerShellMB of the Microsoft.PowerShell endpoint by default (MS-WSMV)


def runspaces_for(domains: int, host_parallelism: int | None) -> int:
    """How many domains the host reads at once for a status of ``domains``: ``host_parallelism`` when set, else
    enough for two rounds (each round about one domain's read), at least FEWEST_RUNSPACES and at most
    MOST_RUNSPACES. The session's memory is bounded on the host itself (WinRM's MaxMemoryPerShellMB), and each
    read reports its peak (``SessionUse``), which ``kerberos-bot check`` compares with that bound."""
    if host_parallelism is not None:
        return host_parallelism
    return min(MOST_RUNSPACES, max(FEWEST_RUNSPACES, math.ceil(domains / 2)))


def rounds_of(domains: int, runspaces: int) -> int:
    """How many rounds of ``runspaces`` reads the host needs for ``domains`` (at least one: the session itself)."""
    return max(1, math.ceil(domains / runspaces))


@dataclass(frozen=True)
class SessionUse:
    """What one read of many domains took on the host: runspaces at once, seconds, and the session process's
    peak private memory (what WinRM's per-shell memory quota counts); None where the host did not say."""

    domains: int
    runspaces: int
    seconds: float
    peak_memory_mb: int | None

    @property
    def rounds(self) -> int:
        return rounds_of(self.domains, self.runspaces)


def read_many_call(
    domains: Sequence[str],
    credentials: ModuleCredentials | None,
    *,
    parallelism: int,
    min_module_version: str,
    endpoint: int | None,
    jea: bool,
) -> ScriptCall:
    """``Get-AzureAdKerberosServer`` for every domain in one pipeline: READ_MANY_SCRIPT, or on a JEA endpoint its
    ``Get-KerberosBotServers`` (no credential); the domains are bound parameters, as every value is."""
    parameters: dict[str, Any] = {"Parallelism": parallelism}
    if endpoint is not None:
        parameters["Endpoint"] = endpoint
    if jea:
        parameters["Domain"] = list(domains)
        return ScriptCall(ps.JEA_READ_MANY, parameters, f"{ps.JEA_READ_MANY} (JEA) for {len(domains)} domains", True)
    parameters.update(Domains=list(domains), MinimumVersion=min_module_version)
    if credentials is not None:
        parameters["DomainCredential"] = _credential(credentials.domain_user, credentials.domain_password)
        parameters["CloudCredential"] = _credential(credentials.cloud_user, credentials.cloud_password)
    return ScriptCall(READ_MANY_SCRIPT, parameters, f"Get-AzureAdKerberosServer for {len(domains)} domains")


def jea_call(invocation: ps.Invocation, *, endpoint: int | None) -> ScriptCall:
    """The JEA function for the invocation's cmdlet, with the same values; switches as true, no credential."""
    parameters: dict[str, Any] = {
        name: (list(value) if not isinstance(value, str) else value) for name, value in invocation.parameters.items()
    }
    parameters.update(dict.fromkeys(invocation.switches, True))
    if endpoint is not None:  # the function sets the module's cloud endpoint before its cmdlet
        parameters["Endpoint"] = endpoint
    name = ps.JEA_FUNCTIONS[invocation.cmdlet]
    return ScriptCall(name, parameters, f"{name} (JEA) for {invocation.describe()}", command=True)


def add_call(shell: PowerShell, call: ScriptCall) -> PowerShell:
    """The one place a pipeline is built: the constant script (or the JEA command), then each value as
    a named parameter."""
    if call.command:
        shell.add_cmdlet(call.script)
        return shell.add_parameters(dict(call.parameters))
    shell.add_script(call.script)
    return shell.add_parameters(dict(call.parameters))
