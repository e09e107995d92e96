"""End a domain's change freeze before its time."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.services.changes.holds import freeze_record
from bot.services.verification import SignInFor
from handlers.commands import CommandContext, Prepared, require_changes, sign_in_for
from handlers.notices.freezes import hold_sign_in_prompt, tell_thawed, thawed_text
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, text_reply

NAME = "thaw"
ORDER = 66  # where it shows in help and in the manifest
USAGE = "thaw <domain>"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    changes, _ = require_changes(ctx)
    if len(command.args) != 1 or command.flags or command.options:
        raise UsageError(f"Name one domain: `/kerberos {USAGE}`.")
    [domain] = command.args

    async def work() -> list[Reply]:
        if changes.holds.needs_sign_in:  # [changes] freeze_verified: the end waits for the sign-in
            name = await changes.holds.may_thaw(domain, by=ctx.user_id)
            if await changes.holds.freeze_of(name) is None:
                return [text_reply(f"{code(name)} is not frozen.")]
            binding = SignInFor(freeze_record(name), "thaw", ctx.user_id, ctx.origin, ctx.channel_id, name)
            return [hold_sign_in_prompt(f"Ending the freeze of {name}", await sign_in_for(ctx, binding))]
        ended = await changes.holds.thaw(domain, by=ctx.user_id)
        if not ended:
            return [text_reply(f"{code(domain)} was not frozen.")]
        if ctx.client is not None:
            await tell_thawed(ctx.client, changes, ctx.services.alert_channel, domain, ctx.user_id, ctx.channel_id)
        return [text_reply(thawed_text(domain, ctx.user_id))]

    return Prepared(ack=None, work=work)
