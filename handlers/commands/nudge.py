"""Remind the approvers of your pending request, in its card's thread (once an hour by default)."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared, one_request
from handlers.notices.cards import post_in_thread
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, person, text_reply
from handlers.views.cards import group_mentions

NAME = "nudge"
ORDER = 82  # where it shows in help and in the manifest: after cancel
USAGE = "nudge <request id>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    request_id, changes, client = one_request(command, ctx, USAGE)

    async def work() -> list[Reply]:
        request = await changes.decisions.nudge(request_id, ctx.user_id)
        who = group_mentions(changes.queries.card(request).terms.groups)
        await post_in_thread(
            client,
            request,
            f":wave: {person(ctx.user_id)} asks the approvers to look at request `{request.id}` "
            f"({len(request.approvals)} of {request.approvals_required} approvals; it expires at "
            f"{request.expires_at:%H:%M} UTC). {who}",
        )
        return [text_reply(f"The approvers of `{request.id}` are reminded in its thread.")]

    return Prepared(ack=None, work=work)
