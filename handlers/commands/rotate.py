"""Ask to rotate the Entra Kerberos key of a domain (approvers decide; --force within 24 hours; --twice:
the second rotation, which retires the old key, is filed once the 24-hour window has passed)."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.commands.ask_approval import ask_for_approval
from handlers.parsing import ParsedCommand

NAME = "rotate"
ORDER = 20  # where it shows in help and in the manifest
USAGE = "rotate <domain> [--force] [--twice] -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    force, twice = "force" in command.flags, "twice" in command.flags
    return ask_for_approval(
        command,
        ctx,
        USAGE,
        frozenset({"force", "twice"}),
        lambda changes, domain, reason, where: changes.intake.request_rotation(
            domain,
            requester=ctx.user_id,
            reason=reason,
            force=force,
            channel=where.channel_id,
            origin=where.origin,
            twice=twice,
        ),
    )
