"""Take over a change handed to another operator (operator-executes mode): it becomes yours to run."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from handlers.commands import CommandContext, Prepared, one_request
from handlers.notices.cards import post_in_thread, update_card
from handlers.notices.direct import direct_message
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, person, text_reply
from handlers.views.blocks import SECTION_TEXT, clip

log = logging.getLogger(__name__)

NAME = "take"
ORDER = 84  # where it shows in help and in the manifest: before done
USAGE = "take <request id>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    request_id, changes, client = one_request(command, ctx, USAGE, "Name the request to take over")
    operators = changes.operators

    async def work() -> list[Reply]:
        request, previous, handover = await operators.take_over(request_id, ctx.user_id)
        await update_card(client, changes, request)
        line = (
            f":technologist: {person(handover.operator)} took request {request.id} over from "
            f"{person(previous.operator)} and runs it with their own MFA sign-in, until {handover.until:%H:%M} UTC: "
            f"the command on the card is theirs now. Then `/kerberos done {request.id}`."
        )
        await post_in_thread(client, request, line)
        try:  # the thread says it too; a DM that cannot be sent loses nothing
            await direct_message(
                client,
                previous.operator,
                f"Request {request.id} was taken over",
                [SectionBlock(text=MarkdownTextObject(text=clip(f"{line} Do not run it yourself.", SECTION_TEXT)))],
            )
        except Exception:
            log.warning("could not tell operator %s that request %s was taken over", previous.operator, request.id)
        return [
            text_reply(
                f":technologist: Request `{request.id}` is yours to run until {handover.until:%H:%M} UTC: the command "
                f"with your account is on its card. Then `/kerberos done {request.id}`."
            )
        ]

    return Prepared(ack=None, work=work)
