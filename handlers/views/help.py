"""The /kerberos help reply, from the subcommands' catalog."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from handlers.replies import Reply, escape
from handlers.views.blocks import SECTION_TEXT, clip


def help_reply(entries: Sequence[tuple[str, str]]) -> Reply:
    lines = [f"`/kerberos {usage}`  {escape(summary)}" for usage, summary in entries]
    return Reply(
        text="kerberos-bot commands",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text="*kerberos-bot*: Microsoft Entra Kerberos for Azure SQL MI")),
            SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT))),
        ],
    )
