"""List open and recent change requests with their state."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.messages import Reply, escape, plain
from handlers.parsing import ParsedCommand
from handlers.views import MAX_BLOCKS, STATE_LINES, text_reply

NAME = "requests"
ORDER = 70  # where it shows in help and in the manifest
USAGE = "requests"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if command.args or command.flags:
        raise UsageError("`requests` takes no arguments.")
    changes, _ = require_changes(ctx)

    async def work() -> list[Reply]:
        recent = await changes.pending_or_recent(20)
        if not recent:
            return [text_reply("No change requests yet.")]
        blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text="*Change requests, newest first*"))]
        for r in recent:
            line = (
                f"`{r.id}` {r.action.value} {r.domain} by <@{r.requester}>, {r.created_at:%Y-%m-%d %H:%M} UTC: "
                f"{STATE_LINES[r.state]} ({len(r.approvals)}/{r.approvals_required} approvals)"
            )
            if r.approvals:
                line += "\n      approved by " + ", ".join(
                    f"<@{a.approver}> ({escape(a.identity.describe())})"
                    if a.identity
                    else f"<@{a.approver}> (Slack only)"
                    for a in r.approvals
                )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=line[:2900])))
            # the requester's words: plain text, one line, after the facts
            blocks.append(ContextBlock(elements=[PlainTextObject(text=f"Reason: {plain(r.reason, 200)}", emoji=False)]))
        return [Reply(text="Change requests, newest first", blocks=blocks[:MAX_BLOCKS])]

    return Prepared(ack=None, work=work)
