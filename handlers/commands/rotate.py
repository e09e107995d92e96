"""Ask to rotate the Entra Kerberos key of a domain (approvers decide; --force within 24 hours)."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.commands.ask_approval import ask_for_approval
from handlers.parsing import ParsedCommand

NAME = "rotate"
ORDER = 20  # where it shows in help and in the manifest
USAGE = "rotate <domain> [--force] -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    force = "force" in command.flags
    return ask_for_approval(
        command,
        ctx,
        USAGE,
        frozenset({"force"}),
        lambda changes, domain, reason: changes.request_rotation(
            domain, requester=ctx.user_id, reason=reason, force=force, channel=ctx.channel_id, origin=ctx.origin
        ),
    )
