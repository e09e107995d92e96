"""Show the KDC proxy Group Policy value that clients of this tenant need (read-only)."""

from __future__ import annotations

from bot.domain.errors import KerberosBotError, UsageError
from handlers.commands import CommandContext, Prepared
from handlers.parsing import ParsedCommand
from handlers.replies import text_reply

NAME = "gpo"
ORDER = 60  # where it shows in help and in the manifest
USAGE = "gpo"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if command.args or command.flags:
        raise UsageError("`gpo` takes no arguments.")
    setting = ctx.services.kdc_proxy
    if setting is None:
        raise KerberosBotError("No Entra tenant is configured.")
    text = (
        "*Group Policy:* Administrative Templates › System › Kerberos › "
        "*Specify KDC proxy servers for Kerberos clients* › Enabled › Show…\n"
        f"*Value name:* `{setting.value_name}`\n*Value:* `{setting.value}`\n"
        "_Note the space after `https` and before the closing `/`._ Deploy it to the clients that use the "
        "incoming trust-based flow."
    )
    return Prepared(ack=text_reply(text, icon=":scroll:"))
