"""``kerberos-bot check``'s lines for the management host: the connection (reach, TLS, auth), the module on it,
the cloud credential as a change uses it, and what a status of every domain asks of the host."""

from __future__ import annotations

import math
from collections.abc import Callable

from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule, cloud_name
from bot.adapters.kerberos_module.remoting.powershell import MODULE
from bot.bootstrap.module import build_remoting
from bot.config import RemotingConfig
from bot.domain.errors import KerberosBotError
from bot.entrypoints.check_result import CheckResult


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


async def check_remoting(
    remoting: RemotingConfig,
    build: Callable[[RemotingConfig], RemotingKerberosModule] = build_remoting,
    *,
    read_domain: str | None = None,
) -> list[CheckResult]:
    """The connection to the management host (reach, TLS, auth), then the module on it; with
    ``read_domain`` a third line: Get-AzureAdKerberosServer run as a change runs (both credentials), so an
    MFA prompt or a Conditional Access block of the cloud credential shows before anyone approves."""
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
    if read_domain is None:
        return [reached, module]
    return [reached, module, await _cloud_credential(runner, remoting, read_domain, module.ok)]


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


def status_rounds(remoting: RemotingConfig, domains: int) -> CheckResult:
    """What a status of every domain asks of the host: one session, then ``Get-AzureAdKerberosServer`` in rounds
    of ``host_parallelism`` (each round about one domain's read). Said, never failed: more at once costs the host
    memory (each runspace loads the module) that only its administrators can weigh."""
    at_once = remoting.host_parallelism
    rounds = max(1, math.ceil(domains / at_once))
    label = f"status of {domains} domain{'s' if domains != 1 else ''}"
    said = (
        f"one session to {remoting.host}, {rounds} round{'s' if rounds != 1 else ''} of Get-AzureAdKerberosServer "
        f"({at_once} at once: host_parallelism)"
    )
    if rounds <= 2:
        return CheckResult(label, True, said + ": within about twice one domain's time")
    enough = math.ceil(domains / 2)
    return CheckResult(
        label,
        True,
        f"{said}: the host's reads take about {rounds} times one domain's; host_parallelism = {enough} makes it two "
        "rounds, if the host has the memory for that many runspaces (docs/management-host.md)",
    )
