"""What is said when a change with its operator is taken over by another: on the card, in its thread, and to
the one first named, in a direct message."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ChangeRequest
from bot.domain.operators import Handover
from bot.services.changes.engine import ChangeEngine
from handlers.notices.cards import post_in_thread, update_card
from handlers.notices.direct import direct_message
from handlers.replies import person
from handlers.views.blocks import SECTION_TEXT, clip

log = logging.getLogger(__name__)


async def taken_over(
    client: AsyncWebClient, changes: ChangeEngine, request: ChangeRequest, previous: Handover, handover: Handover
) -> str:
    """The card redrawn with the taker's command, the thread told, the one first named told not to run it; returns
    what the taker is told."""
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
    return (
        f":technologist: Request `{request.id}` is yours to run until {handover.until:%H:%M} UTC: the command with "
        f"your account is on its card. Then `/kerberos done {request.id}`."
    )
