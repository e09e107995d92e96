"""Direct messages: to one person, and to requesters about every change of their requests (``RequestWatcher``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import RequestChange, RequestChangeKind
from bot.domain.card import RequestCard
from bot.domain.errors import KerberosBotError
from bot.domain.ports import NoticePreferences
from handlers.notices.cards import card_link
from handlers.replies import escape, is_slack_user, person, plain
from handlers.views.blocks import SECTION_TEXT, clip, plain_context

log = logging.getLogger(__name__)


async def direct_channel(client: AsyncWebClient, user: str) -> str:
    """The bot's direct conversation with ``user`` (im:write)."""
    opened = (await client.conversations_open(users=user)).get("channel")
    channel = opened.get("id") if isinstance(opened, dict) else None
    if not isinstance(channel, str):
        raise KerberosBotError(f"conversations.open gave no channel for {user}")
    return channel


async def direct_message(client: AsyncWebClient, user: str, text: str, blocks: Sequence[Block] = ()) -> None:
    """A message in the bot's direct conversation with ``user``."""
    channel = await direct_channel(client, user)
    await client.chat_postMessage(channel=channel, text=text, blocks=[b.to_dict() for b in blocks] or None)


_REQUESTER_LINES = {
    RequestChangeKind.POSTED: ":inbox_tray: Your request {ref} is posted for approval ({needs}).",
    RequestChangeKind.APPROVAL: ":ballot_box_with_check: {actor} approved your request {ref} ({count} of {required}).",
    RequestChangeKind.APPROVED: ":white_check_mark: {actor} approved your request {ref}: it is approved and starts.",
    RequestChangeKind.DENIED: ":no_entry: {actor} denied your request {ref}.",
    RequestChangeKind.CANCELLED: ":leftwards_arrow_with_hook: {actor} withdrew your request {ref}.",
    RequestChangeKind.EXPIRED: ":clock3: Your request {ref} expired: {detail}",
    RequestChangeKind.WAITING: ":calendar: Your request {ref} is approved, outside the change window: it runs at "
    "{detail}.",
    RequestChangeKind.HANDED_OVER: ":technologist: Your request {ref} is approved and handed to {actor}, who runs it "
    "with their own MFA sign-in; the bot verifies it.",
    RequestChangeKind.SUCCEEDED: ":white_check_mark: Your request {ref} is done: {detail}",
    RequestChangeKind.FAILED: ":x: Your request {ref} failed: {detail}",
    RequestChangeKind.ATTENTION: ":rotating_light: Your request {ref} needs attention: {detail}",
}
MUTE_HINT = "`/kerberos notify off` stops these messages"


class SlackRequesterMessages:
    """The requester hears every change of their request in a direct message, with a link to its card
    (``RequestWatcher``), unless they turned these messages off (``NoticePreferences``). The bot's own
    requests (scheduled ones) have no person to tell."""

    def __init__(self, client: AsyncWebClient, preferences: NoticePreferences | None = None) -> None:
        self._client = client
        self._preferences = preferences

    async def request_changed(self, card: RequestCard, change: RequestChange) -> None:
        request = card.request
        requester = request.requester
        if not is_slack_user(requester):
            return
        if self._preferences is not None and await self._preferences.muted(requester):
            return
        line = self._line(card, change)
        blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT)))]
        if change.kind == RequestChangeKind.DENIED and change.detail:
            # the approver's words: plain text, never markup
            blocks.append(plain_context(f"Reason for the denial: {plain(change.detail)}"))
        link = await card_link(self._client, request)
        footer = (f"<{link}|Open the card> · " if link else "") + MUTE_HINT
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
        await direct_message(self._client, requester, f"Request {request.id}: {change.kind.value}", blocks)

    @staticmethod
    def _line(card: RequestCard, change: RequestChange) -> str:
        request = card.request
        ref = f"`{request.id}` ({escape(card.title)})"
        if change.kind == RequestChangeKind.POSTED and request.approved_with:
            return f":white_check_mark: Your request {ref} is filed approved, together with `{request.approved_with}`."
        needs = f"{card.terms.required} approvals needed, until {request.expires_at:%Y-%m-%d %H:%M} UTC"
        if change.kind == RequestChangeKind.POSTED and request.channel:
            needs += f", in <#{request.channel}>"
        detail = escape(change.detail) if change.detail else "not enough approvals in time."
        return _REQUESTER_LINES[change.kind].format(
            ref=ref,
            actor=person(change.actor) if change.actor else "Someone",
            count=change.count,
            required=card.terms.required,
            needs=needs,
            detail=detail,
        )
