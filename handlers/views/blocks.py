"""What every view shares: Slack's size limits, and user text as Slack shows it verbatim."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, PlainTextObject

# Slack's limits: 50 blocks a message, 10 fields a section, 3,000 characters a text, 2,000 a field.
MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_context(text: str) -> ContextBlock:
    """User text as Slack shows it verbatim: plain_text renders no markup, mention, link or emoji code."""
    return ContextBlock(elements=[PlainTextObject(text=text, emoji=False)])
