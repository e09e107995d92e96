"""End a domain's change freeze before its time."""

from __future__ import annotations

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.commands.announce import announce
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, person, text_reply

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
        if not ended:
            return [text_reply(f"{code(domain)} was not frozen.")]
        said = f"The freeze of {code(domain)} was ended by {person(ctx.user_id)}: changes run there again."
        await announce(ctx, domain, f":sunny: {said}")
        return [text_reply(said)]

    return Prepared(ack=None, work=work)
