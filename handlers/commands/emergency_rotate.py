"""Break-glass for a suspected compromise: a forced rotation now, a second once the new key is on every
DC, the alert channel told, and a review by two people afterwards (its own approver group)."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.commands.ask_approval import ask_for_approval
from handlers.parsing import ParsedCommand

NAME = "emergency-rotate"
ORDER = 25  # where it shows in help and in the manifest: after rotate
USAGE = "emergency-rotate <domain> -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    return ask_for_approval(
        command,
        ctx,
        USAGE,
        frozenset(),
        lambda changes, domain, reason, where: changes.intake.request_emergency_rotation(
            domain, requester=ctx.user_id, reason=reason, channel=where.channel_id, origin=where.origin
        ),
    )
