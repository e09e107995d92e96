"""Take over a change handed to another operator (operator-executes mode): it becomes yours to run."""

from __future__ import annotations

from handlers.commands import CommandContext, Prepared, one_request
from handlers.notices.operators import taken_over
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply

NAME = "take"
ORDER = 84  # where it shows in help and in the manifest: before done
USAGE = "take <request id>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    request_id, changes, client = one_request(command, ctx, USAGE, "Name the request to take over")

    async def work() -> list[Reply]:
        request, previous, handover = await changes.operators.take_over(request_id, ctx.user_id)
        return [text_reply(await taken_over(client, changes, request, previous, handover))]

    return Prepared(ack=None, work=work)
