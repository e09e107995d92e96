"""A reply as the handlers build it: fallback text plus Block Kit blocks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.domain.hints import spelled
from handlers.views.blocks import SECTION_TEXT, clip


@dataclass(frozen=True)
class Reply:
    text: str  # notification / accessibility fallback
    blocks: list[Block] = field(default_factory=list)
    in_channel: bool = False

    def payload(self) -> dict[str, Any]:
        """The keyword arguments for ``ack()`` / ``respond()``; validates every block (once)."""
        return dict(self._payload)

    @cached_property
    def json_text(self) -> str:
        """The payload as JSON, serialised once however many requests or response URLs it answers."""
        return json.dumps(self._payload, separators=(",", ":"))

    @cached_property
    def json_body(self) -> bytes:
        return self.json_text.encode()

    @cached_property
    def _payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text}
        if self.blocks:
            body["blocks"] = [block.to_dict() for block in self.blocks]
        body["response_type"] = "in_channel" if self.in_channel else "ephemeral"
        return body


def escape(text: str) -> str:
    """Slack mrkdwn control characters; directory values are data, never markup. The commands the core's
    text points to (``bot.domain.hints``) as people type them here, in code marks."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return spelled(escaped, lambda command: f"`/kerberos {command}`")


def typed(text: str) -> str:
    """The core's text for a plain_text field: its commands as people type them, without code marks."""
    return spelled(text, lambda command: f"/kerberos {command}")


def plain(text: str, limit: int = 300) -> str:
    """User text for a plain_text object: one line (newlines and runs of spaces collapsed, control
    characters gone), at most ``limit`` characters. plain_text renders no markup, mentions or links."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def code(text: str, limit: int = 100) -> str:
    """User text echoed inside mrkdwn (a domain name typed with a command): inline code shows it as
    typed, with no formatting, mention or link; its own backticks go."""
    return f"`{escape(plain(text, limit).replace('`', ''))}`"


def text_reply(text: str, *, icon: str = "") -> Reply:
    body = f"{icon} {text}" if icon else text
    return Reply(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=clip(body, SECTION_TEXT)))])


def error_reply(message: str) -> Reply:
    return text_reply(escape(message), icon=":warning:")


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def is_slack_user(actor: str) -> bool:
    """A Slack user's id (U…, W…), not the bot's own name for what it files itself."""
    return bool(_SLACK_USER.match(actor))


def person(actor: str) -> str:
    """A Slack user as a mention; anything else (the bot's own schedule, a worker) as code, never as markup."""
    return f"<@{actor}>" if _SLACK_USER.match(actor) else f"`{escape(actor)}`"
