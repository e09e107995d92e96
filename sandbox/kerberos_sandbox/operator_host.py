"""The sandbox's management host as an operator uses it: the command a request's card hands over, run by the
emulator of Microsoft's module signed in to Entra as the person at the keyboard (``-UserPrincipalName``),
so that Entra's audit log names them, as the real module's interactive sign-in would."""

from __future__ import annotations

import shlex

from bot.adapters.kerberos_module.emulator.module import KerberosModuleEmulator
from bot.domain.ports import SetServerOptions
from kerberos_sandbox.sandbox import Sandbox

SET = "Set-AzureADKerberosServer"
REMOVE_TDO = "Remove-AzureADKerberosServerTrustedDomainObject"
REMOVE_ALL = "Remove-AzureAdKerberosServer"


def parsed(command: str) -> tuple[str, SetServerOptions]:
    """The cmdlet and switches of a handed-over command (``bot.domain.operators.command_line`` writes it: single
    quotes, no expansion)."""
    words = shlex.split(command)
    names = words[words.index("-TopLevelNames") + 1].split(",") if "-TopLevelNames" in words else None
    options = SetServerOptions(
        setup_cloud_trust="-SetupCloudTrust" in words,
        top_level_names=names,
        rotate_server_key="-RotateServerKey" in words,
        force="-Force" in words,
    )
    return words[0], options


async def run_at_the_host(box: Sandbox, command: str, domain: str, upn: str) -> None:
    """Run ``command`` for ``domain`` as ``upn``; raises what the module would (its refusals, as errors)."""
    module = box.components.module
    if not isinstance(module, KerberosModuleEmulator):
        raise RuntimeError("the sandbox's module is not the emulator")
    cmdlet, options = parsed(command)
    at_the_host = module.signed_in_as(upn)
    try:
        if cmdlet.lower() == SET.lower():
            await at_the_host.set_server(domain, options)
        elif cmdlet.lower() == REMOVE_TDO.lower():
            await at_the_host.remove_trusted_domain_object(domain)
        elif cmdlet.lower() == REMOVE_ALL.lower():
            await at_the_host.remove_server(domain)
        else:
            raise RuntimeError(f"{cmdlet}: not a cmdlet of the module")
    finally:
        await at_the_host.close()
