"""Ask to set up the Kerberos server and the cloud trust (forest root first; sovereign clouds: --top-level-names)."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES
from handlers.commands import CommandContext, Prepared
from handlers.commands.ask_approval import ask_for_approval
from handlers.parsing import ParsedCommand

NAME = "setup"
ORDER = 40  # where it shows in help and in the manifest
USAGE = "setup <domain> [--top-level-names usgovcloudapi.net,windows.net] -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    raw = command.options.get("top-level-names")
    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip()) if raw else DEFAULT_TOP_LEVEL_NAMES
    for name in names:
        if "." not in name or " " in name:
            raise UsageError(f"`{name}` is not a DNS suffix such as `windows.net`.")
    return ask_for_approval(
        command,
        ctx,
        USAGE,
        frozenset({"top-level-names"}),
        lambda changes, domain, reason, where: changes.intake.request_setup(
            domain,
            requester=ctx.user_id,
            reason=reason,
            top_level_names=names,
            channel=where.channel_id,
            origin=where.origin,
        ),
    )
