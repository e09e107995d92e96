"""Change requests as lists: /kerberos requests, and a domain's history (/kerberos history)."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.domain.approvals import ACTION_KINDS, ChangeRequest
from bot.services.changes.queries import DomainHistory
from handlers.replies import Reply, escape, person, plain, text_reply
from handlers.views.blocks import MAX_BLOCKS, SECTION_TEXT, clip, plain_context
from handlers.views.cards import ACTION_TITLES, state_line


def requests_replies(recent: Sequence[ChangeRequest]) -> list[Reply]:
    """Open and recent requests, newest first; each requester's words as plain text, after the facts."""
    if not recent:
        return [text_reply("No change requests yet.")]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text="*Change requests, newest first*"))]
    for r in recent:
        command = ACTION_KINDS[r.action].command
        line = (
            f"`{r.id}` {command} {r.domain} by {person(r.requester)}, {r.created_at:%Y-%m-%d %H:%M} UTC: "
            f"{state_line(r)} ({len(r.approvals)}/{r.approvals_required} approvals)"
        )
        if r.approvals:
            line += "\n      approved by " + ", ".join(
                f"<@{a.approver}> ({escape(a.identity.describe())})" if a.identity else f"<@{a.approver}> (Slack only)"
                for a in r.approvals
            )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT))))
        blocks.append(plain_context(f"Reason: {plain(r.reason, 200)}"))
    return [Reply(text="Change requests, newest first", blocks=blocks[:MAX_BLOCKS])]


def _by(actor: str | None) -> str:
    return f" by {person(actor)}" if actor else ""


def history_replies(history: DomainHistory) -> list[Reply]:
    """A domain's history: what the bot was asked and did (each request with its audit), then what
    Entra's audit log says changed; facts first, every word a person typed as plain text."""
    blocks: list[Block] = [HeaderBlock(text=clip(f"History: {history.domain}", 150))]
    if not history.requests:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text="No change requests for this domain (within retention)."))
        )
    for request, audit in history.requests:
        head = (
            f"`{request.id}` *{ACTION_TITLES[request.action]}* by {person(request.requester)}, "
            f"{request.created_at:%Y-%m-%d %H:%M} UTC: {state_line(request)} "
            f"({len(request.approvals)}/{request.approvals_required} approvals)"
        )
        steps = [f"{entry.at:%m-%d %H:%M} {entry.event}{_by(entry.actor)}" for entry in audit]
        text = head + ("\n" + " · ".join(steps) if steps else "")
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT))))
        blocks.append(plain_context(f"Reason: {plain(request.reason, 200)}"))
    if history.cloud_events is not None:
        since = f" since {history.since:%Y-%m-%d}" if history.since else ""
        lines = [f"*Entra audit log (KerberosDomain){since}*"]
        lines += [
            f"{event.at:%Y-%m-%d %H:%M} UTC {escape(event.activity)}: {escape(event.result)}"
            + (f" by {escape(event.initiated_by)}" if event.initiated_by else "")
            for event in history.cloud_events[:20]
        ] or ["No KerberosDomain changes."]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT))))
    elif history.cloud_problem:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text=clip(f":warning: Entra's audit log: {escape(history.cloud_problem)}", 2000))
                ]
            )
        )
    return [Reply(text=f"History of {history.domain}", blocks=blocks[:MAX_BLOCKS], in_channel=False)]
