"""The alert channel: told of every emergency rotation and its review."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, PlainTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    Action,
    ChangeRequest,
)
from handlers.replies import person, plain

log = logging.getLogger(__name__)


EMERGENCIES = frozenset({Action.EMERGENCY_ROTATE, Action.EMERGENCY_REVIEW})


async def alert(client: AsyncWebClient, alert_channel: str | None, request: ChangeRequest, what: str) -> None:
    """Tell the alert channel about an emergency request: what happened (the bot's words), who asked, and
    their reason as plain text."""
    if alert_channel is None or request.action not in EMERGENCIES:
        return
    where = f" in <#{request.channel}>" if request.channel else ""
    line = (
        f":rotating_light: *{request.domain}*: {what} (request `{request.id}`, by {person(request.requester)}{where})"
    )
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=line)),
        ContextBlock(elements=[PlainTextObject(text=f"Reason: {plain(request.reason)}", emoji=False)]),
    ]
    await client.chat_postMessage(
        channel=alert_channel, text=f"Emergency rotation: {request.domain}", blocks=[b.to_dict() for b in blocks]
    )
