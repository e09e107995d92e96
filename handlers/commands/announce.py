"""Telling everyone who follows a domain of a freeze or its end: the domain's approvals channel and the alert
channel, besides the channel it was typed in (which the reply reaches)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.changes.engine import ChangeEngine
from handlers.commands import CommandContext

log = logging.getLogger(__name__)


async def announce(ctx: CommandContext, domain: str, text: str) -> None:
    changes = ctx.services.changes
    if ctx.client is None or changes is None:
        return
    await announce_to(ctx.client, changes, ctx.services.alert_channel, domain, text, said_in=ctx.channel_id)


async def announce_to(
    client: AsyncWebClient,
    changes: ChangeEngine,
    alert_channel: str | None,
    domain: str,
    text: str,
    *,
    said_in: str | None = None,
) -> None:
    """The domain's approvals channel and the alert channel (not ``said_in``, where the person hears it)."""
    channels = {changes.queries.approvals_channel_of(domain), alert_channel} - {None, said_in}
    for channel in sorted(c for c in channels if c):
        try:
            await client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:  # the freeze stands; the note is what failed
            log.warning("could not announce in %s: %s", channel, exc.response.get("error"))
