"""A request's card in Slack: posted, linked, redrawn from the stored request, and lines in its thread."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    ChangeRequest,
)
from bot.services.changes.engine import ChangeEngine
from handlers.replies import Reply
from handlers.views.cards import request_card

log = logging.getLogger(__name__)


async def post_card(client: AsyncWebClient, changes: ChangeEngine, request: ChangeRequest, channel: str) -> None:
    """The request's card, posted in ``channel``; the store learns where it is, to update it in place."""
    card = _card(changes, request)
    posted = await client.chat_postMessage(channel=channel, text=card.text, blocks=card.payload()["blocks"])
    await changes.decisions.card_posted(request.id, str(posted["channel"]), str(posted["ts"]))


async def card_link(client: AsyncWebClient, request: ChangeRequest) -> str | None:
    """A link to the request's card (chat.getPermalink), or None when it cannot be had."""
    if not (request.channel and request.card):
        return None
    try:
        answer = await client.chat_getPermalink(channel=request.channel, message_ts=request.card)
    except SlackApiError as exc:
        log.warning("no link to the card of %s: %s", request.id, exc.response.get("error"))
        return None
    link = answer.get("permalink")
    return link if isinstance(link, str) and link.startswith("https://") else None


def _card(changes: ChangeEngine, request: ChangeRequest, now: datetime | None = None) -> Reply:
    return request_card(changes.queries.card(request, now), changes.decisions.button_value(request))


async def update_card(client: AsyncWebClient, changes: ChangeEngine, request: ChangeRequest) -> None:
    """The card redrawn from ``request``, then from the stored request for as long as that says more: updates
    sent by several replicas and clicks at once can land at Slack in any order, and whoever lands last
    looks again, so an older rendering never stays over a newer one (a card left "Waiting for approval"
    on a request that is done)."""
    channel, ts = request.channel, request.card
    if not (channel and ts):
        return
    shown, now = None, changes.queries.now()  # one moment for every rendering: they differ by the request only
    # each round follows a change of the request, and a request changes a handful of times: the bound is a
    # backstop, never the reason a card stops short of the last state
    for _ in range(12):
        card = _card(changes, request, now)
        blocks = card.payload()["blocks"]
        if blocks == shown:
            return
        await client.chat_update(channel=channel, ts=ts, text=card.text, blocks=blocks)
        shown = blocks
        latest = await changes.queries.get(request.id)
        if latest is None:
            return
        request = latest


async def post_in_thread(client: AsyncWebClient, request: ChangeRequest, text: str) -> None:
    if request.channel and request.card:
        await client.chat_postMessage(channel=request.channel, thread_ts=request.card, text=text)
