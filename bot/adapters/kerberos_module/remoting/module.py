"""The production KerberosModule: Microsoft's module run on a Windows management host over PowerShell Remoting.

pypsrp speaks WinRM/PSRP (HTTPS 5986, Negotiate/Kerberos/NTLM/CredSSP). Every call opens a runspace
pool, runs ONE constant script (``RUN_SCRIPT``) whose values (domain, top-level names, credentials,
the endpoint) are bound PSRP parameters, never text pasted into the script, and closes the pool.
The module's credentials go as PSCredential objects whose passwords are PSRP SecureStrings,
encrypted with the session key the pool exchanges first (MS-PSRP 3.1.5.4.3), so they are plain
text neither on the wire inside TLS, nor in the host's transcripts or pipeline logs.
pypsrp is synchronous, so each call runs in a worker thread; a per-host semaphore bounds how many
run at once (the module writes AD and Entra: one at a time by default) and every call has its own
deadline, after which the pipeline is stopped so the thread ends too.

Secrets: at DEBUG, pypsrp logs every SOAP envelope and PSRP message, and spnego / requests_credssp
log their tokens, so their loggers are pinned to WARNING (``quiet_transport_loggers``); the
SecureStrings are the second layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

import requests
from pypsrp.complex_objects import PSCredential, PSInvocationState
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPSRPOperation,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from spnego import KerberosKeytab

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.adapters.kerberos_module.remoting.winrm_kerberos import KerberosClient, kerberos_failure
from bot.adapters.threads import run_in
from bot.domain.errors import KerberosModuleError
from bot.domain.model import KerberosServerReport
from bot.domain.ports import SetServerOptions

log = logging.getLogger(__name__)


def powershell_script(name: str) -> str:
    """One of the adapter's scripts, from ``scripts/`` (package data), read once at import."""
    return (files("bot.adapters.kerberos_module.remoting") / "scripts" / name).read_text(encoding="utf-8")


Auth = Literal["negotiate", "kerberos", "ntlm", "credssp", "basic"]

# Loggers that write request bodies or authentication tokens at DEBUG/INFO.
TRANSPORT_LOGGERS = ("pypsrp", "requests_credssp", "spnego", "urllib3", "requests_ntlm", "requests_kerberos")

CLOUDS = {0: "public", 1: "China", 2: "US Government"}

RUN_SCRIPT = powershell_script("run.ps1")

MODULE_SCRIPT = powershell_script("module.ps1")


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


def _read_back_failure(result: ScriptResult) -> str | None:
    """RUN_SCRIPT's marker for "the change ran, the Get after it failed"."""
    for item in result.output:
        text = str(item)
        if "KerberosBotReadBackFailed" in text:
            try:
                return str(json.loads(text).get("KerberosBotReadBackFailed") or "no error text")
            except (json.JSONDecodeError, AttributeError):
                return text
    return None


def _release_responses(exc: BaseException) -> None:
    """Close the HTTP responses an authentication failure left open.

    When Kerberos fails inside pypsrp's 401 handler (no TGT, unknown SPN, KDC down), the handler
    raises before it reads the 401 and hands the connection back, so closing the session would
    miss that socket; the failing frames still hold the response."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        for value in list(frame.f_locals.values()):
            if isinstance(value, requests.Response):
                value.close()


def _record_text(record: Any) -> str:
    text = str(record) if record is not None else ""
    message = getattr(record, "message", None)
    if message and str(message) not in text:
        text = f"{text} {message}".strip()
    return text


class RemotingKerberosModule:
    """``KerberosModule`` over PowerShell Remoting; see the module docstring."""

    def __init__(
        self,
        target: RemotingTarget,
        credentials: ModuleCredentials | None,
        *,
        min_module_version: str = "2.0.0",
        endpoint: int | None = None,
        concurrency: int = 1,
        timeouts: Timeouts | None = None,
    ) -> None:
        """``credentials`` None: a JEA endpoint (deploy/jea), whose functions hold the rights themselves."""
        quiet_transport_loggers()
        self.target = target
        self._credentials = credentials
        self.jea = credentials is None
        self.min_module_version = min_module_version
        self.endpoint = endpoint
        self.timeouts = timeouts or Timeouts()
        self._slots = asyncio.Semaphore(concurrency)

    async def close(self) -> None:
        """Nothing stays open between calls."""

    # -- the port ------------------------------------------------------------------------------------

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        result = await self._invoke(ps.get_server(domain_dns_name), self.timeouts.read)
        return self._report(result)

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        invocation = ps.set_server(domain_dns_name, options)
        result = await self._invoke(invocation, self.timeouts.change, report=True)
        failure = _read_back_failure(result)
        if failure is None:
            return self._report(result)
        # The change ran; only the Get after it failed. One more try in a fresh session, else say exactly that.
        log.warning("read-back after %s failed on %s: %s", invocation.cmdlet, self.target.host, failure[:500])
        try:
            return await self.get_server(domain_dns_name)
        except KerberosModuleError as exc:
            raise KerberosModuleError(
                f"{invocation.cmdlet} ran on {self.target.host}, but reading the result back failed "
                f"({exc.user_message}); run `/kerberos status` before anything else."
            ) from exc

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        await self._invoke(ps.remove_trusted_domain_object(domain_dns_name), self.timeouts.change)

    async def remove_server(self, domain_dns_name: str) -> None:
        await self._invoke(ps.remove_server(domain_dns_name), self.timeouts.change)

    # -- checks ----------------------------------------------------------------------------------------

    async def module_info(self) -> ModuleInfo:
        """Reaches the host, authenticates and reads which version of the module is installed."""
        call = ScriptCall(MODULE_SCRIPT, {}, "Get-Module -ListAvailable " + ps.MODULE)
        if self.jea:
            call = ScriptCall(ps.JEA_MODULE_INFO, {}, f"{ps.JEA_MODULE_INFO} (JEA)", command=True)
        result = await self._run(call, self.timeouts.check)
        if result.errors:
            raise KerberosModuleError(f"{call.label} failed on {self.target.host}: {result.errors[0][:300]}")
        try:
            data = json.loads(str(result.output[-1])) if result.output else {}
        except json.JSONDecodeError as exc:
            raise KerberosModuleError(f"{call.label} on {self.target.host} returned no JSON.") from exc
        return ModuleInfo(data.get("Version"), data.get("PowerShell"), data.get("Computer"))

    # -- running -----------------------------------------------------------------------------------------

    def _report(self, result: ScriptResult) -> KerberosServerReport:
        text = "\n".join(str(item) for item in result.output if item is not None)
        try:
            return ps.parse_server(text)
        except (ValueError, TypeError) as exc:
            raise KerberosModuleError(f"The module's output on {self.target.host} could not be read.") from exc

    async def _invoke(
        self,
        invocation: ps.Invocation,
        timeout: float,
        *,
        report: bool = False,
    ) -> ScriptResult:
        if self.jea:
            # the endpoint's functions set the cloud endpoint and read the result back themselves
            call = jea_call(invocation, endpoint=self.endpoint)
        else:
            call = script_call(
                invocation,
                self._credentials,
                min_module_version=self.min_module_version,
                endpoint=self.endpoint,
                report=report,
            )
        result = await self._run(call, timeout)
        for warning in result.warnings:  # e.g. the module's own advice; kept for the operator
            log.warning("kerberos module warning on %s: %s: %s", self.target.host, call.label, warning[:500])
        if result.errors or result.failed:
            text = "\n".join(result.errors) or "the pipeline failed without an error record"
            log.warning("kerberos module call failed on %s: %s: %s", self.target.host, call.label, text[:500])
            raise ps.translate_failure(invocation.cmdlet, text)
        return result

    async def _run(self, call: ScriptCall, timeout: float) -> ScriptResult:
        async with self._slots:
            started = time.monotonic()
            work = asyncio.ensure_future(run_in("remoting", self._run_sync, call, timeout))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                # A thread cannot be cancelled: keep the host's slot until the call ends (its own deadline
                # bounds that), so a cancelled caller never lets a second change start beside it.
                await asyncio.wait([work])
                raise
            finally:
                log.info(
                    "kerberos module call on %s: %s (%.1f s)", self.target.host, call.label, time.monotonic() - started
                )

    def _wsman(self, timeout: float) -> WSMan:
        t = self.target
        username, password = t.credential()
        negotiate: dict[str, Any] = {}
        if t.uses_kerberos:
            negotiate["negotiate_service"] = t.spn_service
            if t.spn_hostname:
                negotiate["negotiate_hostname_override"] = t.spn_hostname
        return WSMan(
            t.host,
            port=t.port,
            ssl=t.ssl,
            path=t.path,
            auth=t.auth,
            username=username,  # type: ignore[arg-type]  # pypsrp hands it to spnego.client, which takes credentials
            password=password,
            cert_validation=t.cert_validation,  # type: ignore[arg-type]  # pypsrp passes a str path on to requests
            encryption=t.encryption,
            connection_timeout=max(1, round(t.connect_timeout_seconds)),
            operation_timeout=max(1, round(min(self.timeouts.poll, timeout))),
            read_timeout=max(1, round(min(self.timeouts.poll, timeout))) + 10,
            no_proxy=True,
            **negotiate,
        )

    def _run_sync(self, call: ScriptCall, timeout: float) -> ScriptResult:
        deadline = time.monotonic() + timeout
        wsman = self._wsman(timeout)
        pool = RunspacePool(wsman, configuration_name=self.target.configuration_name)
        try:
            pool.open()
            if call.has_secrets:
                pool.exchange_keys()
            shell = add_call(PowerShell(pool), call)
            shell.begin_invoke()
            while shell.state == PSInvocationState.RUNNING:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stop(shell)
                    raise KerberosModuleError(
                        f"{call.label} did not finish within {timeout:g} s on {self.target.host} and was "
                        "stopped; it may have changed part of the state, so read the status before retrying."
                    )
                shell.poll_invoke(timeout=max(1, round(min(self.timeouts.poll, remaining))))
            result = ScriptResult(
                output=list(shell.output),
                errors=[_record_text(r) for r in shell.streams.error],
                warnings=[_record_text(r) for r in shell.streams.warning],
                information=[_record_text(r) for r in shell.streams.information],
                failed=shell.state == PSInvocationState.FAILED,
            )
        except KerberosModuleError:
            self._close(pool, wsman)
            raise
        except Exception as exc:
            _release_responses(exc)
            self._close(pool, wsman)
            raise self._transport_error(exc, call, timeout) from exc
        # The call is done: a failure to tidy up must not turn a change that ran into a reported failure.
        self._close(pool, wsman, shell)
        return result

    def _stop(self, shell: PowerShell) -> None:
        try:
            shell.stop()  # the host stops the pipeline; the module may have done part of its work
        except Exception as exc:  # the deadline message matters more than why the stop failed
            log.warning("stopping the pipeline on %s failed: %s", self.target.host, type(exc).__name__)

    def _close(self, pool: RunspacePool, wsman: WSMan, shell: PowerShell | None = None) -> None:
        """Signal the pipeline's end and delete the shell; the host reclaims both itself if this fails."""
        try:
            if shell is not None:
                shell.close()
            pool.close()
        except Exception as exc:
            log.warning("closing the session on %s failed: %s", self.target.host, type(exc).__name__)
        finally:
            wsman.close()

    def _transport_error(self, exc: Exception, call: ScriptCall, timeout: float) -> KerberosModuleError:
        """pypsrp, requests and spnego failures -> what is wrong with the connection and how to fix it."""
        t = self.target
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


def cloud_name(endpoint: int | None) -> str:
    return CLOUDS.get(endpoint, f"endpoint {endpoint}") if endpoint is not None else "unknown"


__all__: Sequence[str] = (
    "RUN_SCRIPT",
    "ModuleCredentials",
    "RemotingKerberosModule",
    "RemotingTarget",
    "ScriptCall",
    "Timeouts",
    "add_call",
    "quiet_transport_loggers",
    "script_call",
)
