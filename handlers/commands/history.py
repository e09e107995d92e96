"""Show a domain's recent change requests with their audit, and Entra's KerberosDomain audit events."""

from __future__ import annotations

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply
from handlers.views.requests import history_replies

NAME = "history"
ORDER = 75  # after requests
USAGE = "history <domain>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if len(command.args) != 1 or command.flags:
        raise UsageError(f"Name one domain: `/kerberos {USAGE}`.")
    changes, _ = require_changes(ctx)
    [domain] = ctx.services.status.resolve(command.args[0])  # an unknown domain is refused before the ack

    async def work() -> list[Reply]:
        await ctx.services.readers.check(ctx.user_id)  # [policy] reader_groups, where set
        return history_replies(await changes.queries.history(domain))

    return Prepared(ack=text_reply(f"Reading the history of {domain}…", icon=":scroll:"), work=work)
