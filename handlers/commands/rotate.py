"""Ask to rotate the Entra Kerberos key of a domain (approvers decide; --force within 24 hours)."""

from __future__ import annotations

from bot.domain.errors import KerberosBotError, UsageError
from handlers.commands import CommandContext, Prepared
from handlers.messages import Reply
from handlers.parsing import ParsedCommand
from handlers.views import request_card, text_reply

NAME = "rotate"
USAGE = "rotate <domain> [--force] -- <reason>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    changes = ctx.services.changes
    if changes is None or ctx.client is None:
        raise KerberosBotError("Changes are switched off: the bot has no approval store (REDIS_URL) configured.")
    if len(command.args) != 1:
        raise UsageError(f"Name one domain: `/kerberos {USAGE}`.")
    unknown = command.flags - {"force"}
    if unknown:
        raise UsageError(f"Unknown option `--{sorted(unknown)[0]}`; usage: `/kerberos {USAGE}`.")
    if not command.reason:
        raise UsageError(f"Say why after ` -- `: `/kerberos {USAGE}`.")
    domain, force, reason = command.args[0], "force" in command.flags, command.reason
    client = ctx.client

    async def work() -> list[Reply]:
        request = await changes.request_rotation(
            domain, requester=ctx.user_id, reason=reason, force=force, channel=ctx.channel_id
        )
        card = request_card(request)
        posted = await client.chat_postMessage(channel=ctx.channel_id, text=card.text, blocks=card.payload()["blocks"])
        await changes.card_posted(request.id, str(posted["channel"]), str(posted["ts"]))
        return [
            text_reply(
                f"Request `{request.id}` is posted for approval ({request.approvals_required} needed, "
                f"until {request.expires_at:%H:%M} UTC).",
                icon=":inbox_tray:",
            )
        ]

    return Prepared(ack=text_reply(f"Checking {domain} before asking for approval…", icon=":mag:"), work=work)
