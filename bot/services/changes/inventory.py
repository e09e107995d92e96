"""What exists in AD and Entra after a change that failed mid-way, and how to clean up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.actions.base import ActionContext
from bot.domain.approvals import Action, ChangeRequest
from bot.domain.errors import KerberosBotError
from bot.domain.hints import hint


async def inventory(ctx: ActionContext, request: ChangeRequest, timeout: timedelta) -> str:
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            on_prem = await ctx.directory(request.domain).read_kerberos_objects()
            cloud = await ctx.module.get_server(request.domain)
    except (KerberosBotError, TimeoutError) as exc:
        why = exc.user_message if isinstance(exc, KerberosBotError) else "no answer in time"
        return f"What exists now could not be read ({why.rstrip('.')}); run {hint(f'status {request.domain}')}."
    server = on_prem.server
    have = {
        "the krbtgt_AzureAD account": server is not None and server.krbtgt_dn is not None,
        "the AzureADKerberos computer": server is not None and server.computer_dn is not None,
        "the trusted domain object": on_prem.trusted_domain is not None,
        "Entra's Kerberos server object": cloud.has_cloud,
        "Entra's cloud trust": bool(cloud.cloud_trust_display),
    }
    present = [name for name, there in have.items() if there]
    missing = [name for name, there in have.items() if not there]
    text = (
        f"Now in {request.domain}: {', '.join(present) or 'none of the Kerberos objects'}"
        f"{'; missing: ' + ', '.join(missing) if missing and present else ''}."
    )
    if have["the trusted domain object"] and not have["Entra's cloud trust"]:
        text += (
            f" The trust exists in AD only: remove it with {hint(f'remove-tdo {request.domain}')} "
            "before setting up again."
        )
    elif present and not all(have.values()) and request.action in (Action.SETUP, Action.REMOVE_ALL):
        text += f" To start clean: {hint(f'remove-all {request.domain}')}, then set up again."
    elif server is not None and server.key is not None and cloud.cloud_key_version not in (None, server.key.version):
        text += " KeyVersion and CloudKeyVersion differ: a forced rotation brings them in step."
    return text
