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
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.adapters.kerberos_module.remoting.calls import (
    MODULE_SCRIPT,
    ModuleCredentials,
    ModuleInfo,
    RemotingSecrets,
    RemotingTarget,
    ScriptCall,
    ScriptResult,
    SessionUse,
    Timeouts,
    add_call,
    jea_call,
    quiet_transport_loggers,
    read_many_call,
    rounds_of,
    runspaces_for,
    script_call,
)
from bot.adapters.kerberos_module.remoting.failures import transport_failure
from bot.adapters.threads import run_in
from bot.domain.errors import KerberosBotError, KerberosModuleError
from bot.domain.hints import hint
from bot.domain.model import KerberosServerReport
from bot.domain.ports import SetServerOptions

log = logging.getLogger(__name__)

CLOUDS = {0: "public", 1: "China", 2: "US Government"}


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
        host_parallelism: int | None = None,
        timeouts: Timeouts | None = None,
        secrets_again: Callable[[], RemotingSecrets] | None = None,
        secrets_every: float = 300.0,
    ) -> None:
        """``credentials`` None: a JEA endpoint (deploy/jea), whose functions hold the rights themselves.
        ``secrets_again`` reads the password and the credentials from their sources again, at most every
        ``secrets_every`` seconds, before a call (0: before every call)."""
        quiet_transport_loggers()
        self.target = target
        self._credentials = credentials
        self.jea = credentials is None
        self._secrets_again = secrets_again
        self._secrets_every = secrets_every
        self._secrets_due = time.monotonic() + secrets_every
        self.min_module_version = min_module_version
        self.endpoint = endpoint
        self.timeouts = timeouts or Timeouts()
        self._slots = asyncio.Semaphore(concurrency)
        self.host_parallelism = host_parallelism  # domains one session reads at once on the host; None: sized
        self.last_read_of_many: SessionUse | None = None  # what the last status of many took on the host

    async def close(self) -> None:
        """Nothing stays open between calls."""

    @property
    def rereads_secrets(self) -> bool:
        """The secrets are read again from their sources while the bot runs (files, Key Vault)."""
        return self._secrets_again is not None

    # -- the port ------------------------------------------------------------------------------------

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        result = await self._invoke(ps.get_server(domain_dns_name), self.timeouts.read)
        return self._report(result)

    async def get_servers(self, domain_dns_names: Sequence[str]) -> dict[str, KerberosServerReport | KerberosBotError]:
        """One session for every domain; the host reads ``runspaces_for`` of them at a time, so the call's time limit
        is the read limit per round of that many. A failure of the session itself (the host unreachable, the module
        missing, its memory quota passed) raises; a domain's own failure is that domain's answer."""
        await self._fresh_secrets()
        runspaces = runspaces_for(len(domain_dns_names), self.host_parallelism)
        call = read_many_call(
            domain_dns_names,
            self._credentials,
            parallelism=runspaces,
            min_module_version=self.min_module_version,
            endpoint=self.endpoint,
            jea=self.jea,
        )
        rounds = rounds_of(len(domain_dns_names), runspaces)
        started = time.monotonic()
        result = await self._checked(call, "Get-AzureAdKerberosServer", self.timeouts.read * rounds)
        lines = [str(item) for item in result.output if item is not None and str(item).strip()]
        answers, peak_memory_mb = ps.parse_servers(lines, domain_dns_names)
        use = SessionUse(len(domain_dns_names), runspaces, time.monotonic() - started, peak_memory_mb)
        self.last_read_of_many = use
        log.info(
            "status of %d domains on %s: %d at once, %.1f s, session peak memory %s MB",
            use.domains,
            self.target.host,
            use.runspaces,
            use.seconds,
            "?" if peak_memory_mb is None else peak_memory_mb,
        )
        return dict(answers)

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
                f"({exc.user_message}); run {hint('status')} before anything else."
            ) from exc

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        await self._invoke(ps.remove_trusted_domain_object(domain_dns_name), self.timeouts.change)

    async def remove_server(self, domain_dns_name: str) -> None:
        await self._invoke(ps.remove_server(domain_dns_name), self.timeouts.change)

    # -- checks ----------------------------------------------------------------------------------------

    async def module_info(self) -> ModuleInfo:
        """Reaches the host, authenticates and reads which version of the module is installed."""
        await self._fresh_secrets()
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

    async def _fresh_secrets(self) -> None:
        """The secrets read again when due, so one rotated at its source (a file, Key Vault) is used from the next
        call on; a read that fails keeps the ones in use and says so (never what they are)."""
        if self._secrets_again is None or time.monotonic() < self._secrets_due:
            return
        self._secrets_due = time.monotonic() + self._secrets_every
        try:
            fresh = await run_in("remoting", self._secrets_again)
        except Exception as exc:
            reason = exc.user_message if isinstance(exc, KerberosBotError) else type(exc).__name__
            log.warning(
                "could not read the secrets for %s again (%s); the ones in use are kept", self.target.host, reason
            )
            return
        if fresh.password != self.target.password or fresh.credentials != self._credentials:
            log.info("the secrets for %s changed at their source; the next calls use the new ones", self.target.host)
            self.target = replace(self.target, password=fresh.password)
            self._credentials = fresh.credentials

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
        await self._fresh_secrets()
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
        return await self._checked(call, invocation.cmdlet, timeout)

    async def _checked(self, call: ScriptCall, cmdlet: str, timeout: float) -> ScriptResult:
        """Run the call; its error records fail it, in words an operator can act on."""
        result = await self._run(call, timeout)
        for warning in result.warnings:  # e.g. the module's own advice; kept for the operator
            log.warning("kerberos module warning on %s: %s: %s", self.target.host, call.label, warning[:500])
        if result.errors or result.failed:
            text = "\n".join(result.errors) or "the pipeline failed without an error record"
            log.warning("kerberos module call failed on %s: %s: %s", self.target.host, call.label, text[:500])
            raise ps.translate_failure(cmdlet, text)
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
            raise transport_failure(exc, self.target, call, timeout) from exc
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


def cloud_name(endpoint: int | None) -> str:
    return CLOUDS.get(endpoint, f"endpoint {endpoint}") if endpoint is not None else "unknown"


__all__: Sequence[str] = ("RemotingKerberosModule", "cloud_name")
