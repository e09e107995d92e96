"""End a domain's change freeze before its time."""

from __future__ import annotations

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply

NAME = "thaw"
ORDER = 66  # where it shows in help and in the manifest
USAGE = "thaw <domain>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    changes, _ = require_changes(ctx)
    if len(command.args) != 1 or command.flags or command.options:
        raise UsageError(f"Name one domain: `/kerberos {USAGE}`.")
    [domain] = command.args

    async def work() -> list[Reply]:
        ended = await changes.holds.thaw(domain, by=ctx.user_id)
        return [text_reply(f"The freeze of {domain} is over." if ended else f"{domain} was not frozen.")]

    return Prepared(ack=None, work=work)
