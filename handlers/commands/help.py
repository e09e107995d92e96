"""List the subcommands with what they do."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared
from handlers.parsing import ParsedCommand
from handlers.views.help import help_reply

NAME = "help"
ORDER = 90  # where it shows in help and in the manifest
USAGE = "help"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    return Prepared(ack=help_reply(ctx.catalog))
