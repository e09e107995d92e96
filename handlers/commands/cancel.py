"""Withdraw your own pending change request, or (an approver) an approved one still waiting for its change window."""

from __future__ import annotations

from bot.domain.approvals import Verdict
from handlers.commands import CommandContext, Prepared, one_request
from handlers.notices.cards import update_card
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply

NAME = "cancel"
ORDER = 80  # where it shows in help and in the manifest
USAGE = "cancel <request id>"
ANSWERS = {
    Verdict.CANCELLED: "Request `{id}` is cancelled.",
    Verdict.NOT_REQUESTER: "Only the person who asked can cancel request `{id}` (and, while it waits for its change "
    "window, its approvers).",
    Verdict.NOT_PENDING: "Request `{id}` is already decided; it can no longer be cancelled.",
    Verdict.EXPIRED: "Request `{id}` had already expired.",
    Verdict.NOT_FOUND: "There is no request `{id}`; `/kerberos requests` lists them.",
}


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    request_id, changes, client = one_request(command, ctx, USAGE)

    async def work() -> list[Reply]:
        result = await changes.decisions.cancel(request_id, ctx.user_id)
        if result.verdict == Verdict.CANCELLED and result.request is not None:
            await update_card(client, changes, result.request)
        return [text_reply(ANSWERS.get(result.verdict, "Nothing changed.").format(id=request_id))]

    return Prepared(ack=None, work=work)
