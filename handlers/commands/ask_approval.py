"""What every changing subcommand shares: checks, the request, the card, the reply to the requester."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.domain.approvals import ChangeRequest
from bot.domain.errors import UsageError
from bot.services.changes import ChangeService
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.notices import alert, post_card
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, text_reply

Submit = Callable[[ChangeService, str, str], Awaitable[ChangeRequest]]  # (service, domain, reason)


def ask_for_approval(
    command: ParsedCommand, ctx: CommandContext, usage: str, allowed_flags: frozenset[str], submit: Submit
) -> Prepared:
    changes, client = require_changes(ctx)
    if len(command.args) != 1:
        raise UsageError(f"Name one domain: `/kerberos {usage}`.")
    unknown = (command.flags - allowed_flags) | (set(command.options) - allowed_flags)
    if unknown:
        raise UsageError(f"Unknown option `--{sorted(unknown)[0]}`; usage: `/kerberos {usage}`.")
    if not command.reason:
        raise UsageError(f"Say why after ` -- `: `/kerberos {usage}`.")
    domain, reason = command.args[0], command.reason

    async def work() -> list[Reply]:
        request = await submit(changes, domain, reason)
        await post_card(client, changes, request, ctx.channel_id)
        await alert(client, ctx.services.alert_channel, request, "an emergency rotation was requested")
        return [
            text_reply(
                f"Request `{request.id}` is posted for approval ({request.approvals_required} needed, "
                f"until {request.expires_at:%H:%M} UTC).",
                icon=":inbox_tray:",
            )
        ]

    return Prepared(ack=text_reply(f"Checking {code(domain)} before asking for approval…", icon=":mag:"), work=work)
