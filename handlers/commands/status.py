"""Show the Entra Kerberos server of a domain (all configured domains without one) and what is wrong."""

from __future__ import annotations

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared
from handlers.messages import Reply
from handlers.parsing import ParsedCommand
from handlers.views import status_replies, text_reply

NAME = "status"
USAGE = "status [domain]"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if len(command.args) > 1:
        raise UsageError(f"`status` takes at most one domain; usage: `/kerberos {USAGE}`.")
    if command.flags:
        raise UsageError(f"`status` takes no options (got `--{'`, `--'.join(sorted(command.flags))}`).")
    service = ctx.services.status
    domain = command.args[0] if command.args else None
    domains = service.resolve(domain)  # an unknown domain is refused before acknowledging

    async def work() -> list[Reply]:
        return status_replies(await service.status(domain))

    names = ", ".join(domains)
    return Prepared(ack=text_reply(f"Checking the Kerberos server of {names}…", icon=":mag:"), work=work)
