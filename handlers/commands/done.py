"""Say you ran a change handed to you (operator-executes mode): the bot looks at AD and Entra at once."""

from __future__ import annotations

from bot.domain.operators import Verdict
from handlers.commands import CommandContext, Prepared, one_request
from handlers.notices.cards import post_in_thread, update_card
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, escape, text_reply

NAME = "done"
ORDER = 85  # where it shows in help and in the manifest
USAGE = "done <request id>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    request_id, changes, client = one_request(command, ctx, USAGE, "Name the request you ran")
    operators = changes.operators

    async def work() -> list[Reply]:
        look = await operators.done(request_id, ctx.user_id)
        request = look.request
        if look.concluded:
            icon = ":white_check_mark:" if look.judgement.verdict == Verdict.VERIFIED else ":rotating_light:"
            await update_card(client, changes, request)
            await post_in_thread(client, request, f"{icon} {escape(request.outcome or '')}")
            return [text_reply(f"{icon} Request `{request_id}`: {escape(request.outcome or '')}")]
        until = f"{look.handover.until:%H:%M} UTC" if look.handover else "its time limit"
        return [
            text_reply(
                f":mag: Request `{request_id}`: not seen yet. {escape(look.judgement.saw)} The bot keeps looking "
                f"until {until} (Entra's audit log can take a few minutes)."
            )
        ]

    return Prepared(ack=None, work=work)
