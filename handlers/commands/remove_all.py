"""Ask to remove all Kerberos settings of a domain: trusted domain object, service account, cloud object."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.commands.ask_approval import ask_for_approval
from handlers.parsing import ParsedCommand

NAME = "remove-all"
ORDER = 50  # where it shows in help and in the manifest
USAGE = "remove-all <domain> -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    return ask_for_approval(
        command,
        ctx,
        USAGE,
        frozenset(),
        lambda changes, domain, reason, where: changes.intake.request_remove_all(
            domain, requester=ctx.user_id, reason=reason, channel=where.channel_id, origin=where.origin
        ),
    )
