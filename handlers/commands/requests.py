"""List open and recent change requests with their state."""

from __future__ import annotations

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.parsing import ParsedCommand
from handlers.replies import Reply
from handlers.views.requests import requests_replies

NAME = "requests"
ORDER = 70  # where it shows in help and in the manifest
USAGE = "requests"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if command.args or command.flags:
        raise UsageError("`requests` takes no arguments.")
    changes, _ = require_changes(ctx)

    async def work() -> list[Reply]:
        await ctx.services.readers.check(ctx.user_id)  # [policy] reader_groups, where set
        return requests_replies(await changes.queries.pending_or_recent(20))

    return Prepared(ack=None, work=work)
