"""Turn the direct messages about your own requests off or on (they are on by default)."""

from __future__ import annotations

from bot.domain.errors import KerberosBotError, UsageError
from handlers.commands import CommandContext, Prepared
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply

NAME = "notify"
ORDER = 85  # where it shows in help and in the manifest: after cancel
USAGE = "notify on|off"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if command.args not in (("on",), ("off",)) or command.flags or command.options:
        raise UsageError(f"Say `on` or `off`: `/kerberos {USAGE}`.")
    preferences = ctx.services.preferences
    if preferences is None:
        raise KerberosBotError("Direct messages cannot be turned off here: the bot has no store (REDIS_URL) for it.")
    muted = command.args == ("off",)

    async def work() -> list[Reply]:
        await preferences.set_muted(ctx.user_id, muted)
        if muted:
            return [
                text_reply("Direct messages about your requests are off; their cards and threads still say it all.")
            ]
        return [text_reply("You will hear in a direct message what becomes of each of your requests.")]

    return Prepared(ack=None, work=work)
