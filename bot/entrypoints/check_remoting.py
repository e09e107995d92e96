"""``kerberos-bot check``'s lines for the management host: the connection (reach, TLS, auth), the module on it,
the cloud credential as a change uses it, and what a status of every domain takes on the host (its time and
the session's memory, measured by doing one)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

from bot.adapters.kerberos_module.remoting.calls import WINRM_SHELL_MEMORY_MB, rounds_of, runspaces_for
from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule, cloud_name
from bot.adapters.kerberos_module.remoting.powershell import MODULE, SHELL_MEMORY_MESSAGE
from bot.bootstrap.module import build_remoting
from bot.config import RemotingConfig
from bot.domain.errors import KerberosBotError
from bot.entrypoints.check_result import CheckResult

CALL_SECONDS = 15.0  # what check allows each of its short calls


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


async def check_management_host(
    remoting: RemotingConfig,
    domains: Sequence[str],
    build: Callable[[RemotingConfig], RemotingKerberosModule] = build_remoting,
) -> list[CheckResult]:
    """``check``'s lines for the host: the connection, the module, the first domain read as a change reads it,
    and every domain read once as a status reads them; bounded as a whole by the calls' own deadlines."""
    rounds = rounds_of(len(domains), runspaces_for(len(domains), remoting.host_parallelism))
    limit = 2 * CALL_SECONDS + 30 + remoting.read_timeout_seconds * (1 + rounds)
    first = domains[0] if domains else None
    try:
        return await asyncio.wait_for(check_remoting(remoting, build, read_domain=first, every_domain=domains), limit)
    except TimeoutError:
        return [CheckResult(f"winrm {remoting.host}", False, f"no answer within {limit:g} s")]


async def check_remoting(
    remoting: RemotingConfig,
    build: Callable[[RemotingConfig], RemotingKerberosModule] = build_remoting,
    *,
    read_domain: str | None = None,
    every_domain: Sequence[str] = (),
) -> list[CheckResult]:
    """The connection to the management host (reach, TLS, auth), then the module on it; with
    ``read_domain`` a third line: Get-AzureAdKerberosServer run as a change runs (both credentials), so an
    MFA prompt or a Conditional Access block of the cloud credential shows before anyone approves; with
    ``every_domain`` a fourth: those domains read as a status of every domain reads them (``_every_domain``)."""
    host_label, module_label = f"winrm {remoting.host}", f"module on {remoting.host}"
    try:
        runner = build(remoting)
    except KerberosBotError as exc:  # a secret's environment variable or file is missing, or KRB5_CONFIG disagrees
        fix = "" if "KRB5_CONFIG" in exc.user_message else "set the secret the configuration names"
        return [CheckResult(host_label, False, exc.user_message, fix)]
    try:
        info = await runner.module_info()
    except KerberosBotError as exc:
        return [
            CheckResult(host_label, False, exc.user_message),
            CheckResult(module_label, False, "not checked: the host could not be used"),
        ]
    if remoting.mode == "jea":
        mode = f"JEA endpoint {remoting.session_configuration}: fixed functions, no credential sent"
    else:
        mode = f"full-language endpoint {remoting.session_configuration}: sends the domain and cloud credentials"
    how = f"{remoting.auth}, HTTPS {'on' if remoting.ssl else 'OFF'}"
    who = remoting.username or "the Kerberos ticket's user"
    if runner.target.uses_kerberos:
        kerberos = runner.target.kerberos
        who = kerberos.who
        how = f"{remoting.auth} via {kerberos.source}, SPN {kerberos.spn}, HTTPS {'on' if remoting.ssl else 'OFF'}"
    reached = CheckResult(
        host_label,
        True,
        f"{remoting.host}:{remoting.port} as {who} ({how}): "
        f"{info.computer or '?'}, PowerShell {info.powershell or '?'}; {mode}",
    )
    if info.version is None:
        module = CheckResult(
            module_label,
            False,
            f"{MODULE} is not installed",
            f"on the host, as an administrator: Install-Module {MODULE} -Scope AllUsers",
        )
    elif _version(info.version) < _version(remoting.min_module_version):
        module = CheckResult(
            module_label,
            False,
            f"{MODULE} {info.version} is older than min_module_version {remoting.min_module_version}",
            f"on the host: Update-Module {MODULE}",
        )
    else:
        cloud = f", cloud endpoint {cloud_name(remoting.endpoint)} set before each call" if remoting.endpoint else ""
        module = CheckResult(
            module_label, True, f"{MODULE} {info.version} (at least {remoting.min_module_version}){cloud}"
        )
    lines = [reached, module]
    if read_domain is not None:
        lines.append(await _cloud_credential(runner, remoting, read_domain, module.ok))
    if every_domain and all(line.ok for line in lines):
        lines.append(await _every_domain(runner, remoting, every_domain))
    return lines


async def _cloud_credential(
    runner: RemotingKerberosModule, remoting: RemotingConfig, domain: str, module_ok: bool
) -> CheckResult:
    label = f"cloud credential on {remoting.host}"
    if not module_ok:
        return CheckResult(label, False, "not checked: the module is not usable")
    credential = remoting.cloud_credential
    who = credential.user if credential is not None else "the cloud credential the JEA endpoint keeps"
    try:
        await runner.get_server(domain)
    except KerberosBotError as exc:
        if "multi-factor" in exc.user_message:
            return CheckResult(
                label,
                False,
                f"{who}: {exc.user_message}",
                "docs/management-host.md, 'The cloud credential and MFA'",
            )
        return CheckResult(label, False, f"{who}: {exc.user_message}", "check cloud_credential and its role")
    return CheckResult(
        label, True, f"Get-AzureAdKerberosServer -Domain {domain} signed in to Entra ID as {who}, as a change will"
    )


async def _every_domain(
    runner: RemotingKerberosModule, remoting: RemotingConfig, domains: Sequence[str]
) -> CheckResult:
    """A status of every domain's read on the host, done once as a status does it: its rounds, its time and the
    session's peak memory against what WinRM allows a shell by default. Near that quota it advises; a read that
    fails, or a domain not read, fails."""
    label = f"status of {len(domains)} domain{'s' if len(domains) != 1 else ''}"
    try:
        answers = await runner.get_servers(domains)
    except KerberosBotError as exc:
        fix = "set host_parallelism lower" if SHELL_MEMORY_MESSAGE in exc.user_message else ""
        return CheckResult(label, False, exc.user_message, fix)
    use = runner.last_read_of_many
    failed = {name: answer for name, answer in answers.items() if isinstance(answer, KerberosBotError)}
    if failed or use is None:
        name, error = next(iter(failed.items())) if failed else (domains[0], None)
        said = error.user_message if error is not None else "no answer"
        return CheckResult(label, False, f"{len(failed)} of {len(domains)} not read; {name}: {said}")
    sized = "host_parallelism" if remoting.host_parallelism is not None else "sized for two rounds"
    detail = (
        f"one session to {remoting.host}, {use.rounds} round{'s' if use.rounds != 1 else ''} of "
        f"Get-AzureAdKerberosServer ({use.runspaces} at once: {sized}) in {use.seconds:.1f} s"
    )
    if use.peak_memory_mb is None:
        return CheckResult(
            label, True, f"{detail}; the host did not say the session's memory", _OLD_ENDPOINT if runner.jea else ""
        )
    per_runspace = use.peak_memory_mb / use.runspaces  # the process's own memory counted in: an overestimate
    detail += (
        f"; the session's peak memory {use.peak_memory_mb} MB of the {WINRM_SHELL_MEMORY_MB} MB WinRM allows a shell "
        "by default (MaxMemoryPerShellMB)"
    )
    if use.peak_memory_mb > _NEAR:
        fitting = max(1, min(use.runspaces - 1, math.floor(_NEAR / per_runspace)))
        return CheckResult(
            label,
            True,
            detail + ": near the quota",
            f"host_parallelism = {fitting}, or raise MaxMemoryPerShellMB of the endpoint (docs/management-host.md)",
        )
    if use.rounds > 2:
        two = math.ceil(len(domains) / 2)
        needs = math.ceil(per_runspace * two)
        beyond = "; more than WinRM allows by default: raise MaxMemoryPerShellMB too" if needs > _NEAR else ""
        return CheckResult(
            label,
            True,
            f"{detail}: about {use.rounds} times one domain's read",
            f"host_parallelism = {two} makes it two rounds, about {needs} MB by this session's peak per runspace"
            + beyond,
        )
    return CheckResult(label, True, detail)


_NEAR = 0.75 * WINRM_SHELL_MEMORY_MB  # a session's peak past this is near the default quota
_OLD_ENDPOINT = "the JEA endpoint predates the memory line: run deploy/jea/Install-KerberosBotJea.ps1 again"
