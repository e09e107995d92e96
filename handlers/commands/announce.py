"""Telling everyone who follows a domain of a freeze or its end: the domain's approvals channel and the alert
channel, besides the channel it was typed in (which the reply reaches)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from handlers.commands import CommandContext

log = logging.getLogger(__name__)


async def announce(ctx: CommandContext, domain: str, text: str) -> None:
    changes = ctx.services.changes
    if ctx.client is None or changes is None:
        return
    channels = {changes.queries.approvals_channel_of(domain), ctx.services.alert_channel} - {None, ctx.channel_id}
    for channel in sorted(c for c in channels if c):
        try:
            await ctx.client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:  # the freeze stands; the note is what failed
            log.warning("could not announce in %s: %s", channel, exc.response.get("error"))
