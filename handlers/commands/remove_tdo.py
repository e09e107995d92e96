"""Ask to remove only the trusted domain object (the service account stays: FIDO keeps working)."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.commands.changes import change_command
from handlers.parsing import ParsedCommand

NAME = "remove-tdo"
ORDER = 30  # where it shows in help and in the manifest
USAGE = "remove-tdo <domain> -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    return change_command(
        command,
        ctx,
        USAGE,
        frozenset(),
        lambda changes, domain, reason: changes.request_tdo_removal(
            domain, requester=ctx.user_id, reason=reason, channel=ctx.channel_id, origin=ctx.origin
        ),
    )
