"""Stop changes in a domain until a time (a change freeze); only an emergency rotation runs meanwhile."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.domain.errors import UsageError
from bot.services.changes.holds import freeze_record
from bot.services.verification import SignInFor
from handlers.commands import CommandContext, Prepared, require_changes, sign_in_for
from handlers.notices.freezes import frozen_text, hold_sign_in_prompt, tell_frozen
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, text_reply

NAME = "freeze"
ORDER = 65  # where it shows in help and in the manifest
USAGE = "freeze <domain> <until: 2026-12-24T18:00 | 3d | 12h> -- <reason>"
_SPAN = re.compile(r"(\d{1,4})([mhd])")


def until_of(text: str, now: datetime) -> datetime:
    """An end time in UTC (ISO 8601 date or date and time), or a span from now (30m, 12h, 3d)."""
    span = _SPAN.fullmatch(text)
    if span:
        amount, unit = int(span.group(1)), span.group(2)
        return now + {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{code(text)} is not a time: give 2026-12-24T18:00 (UTC), or a span such as 3d or 12h."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    changes, _ = require_changes(ctx)
    if len(command.args) != 2 or command.flags or command.options:
        raise UsageError(f"Name the domain and when the freeze ends: `/kerberos {USAGE}`.")
    domain, until_text = command.args
    until = until_of(until_text, datetime.now(UTC))

    async def work() -> list[Reply]:
        reason = command.reason or ""
        if changes.holds.needs_sign_in:  # [changes] freeze_verified: the freeze waits for the sign-in
            name = await changes.holds.may_freeze(domain, by=ctx.user_id, until=until, reason=reason)
            binding = SignInFor(
                freeze_record(name), "freeze", ctx.user_id, ctx.origin, ctx.channel_id, name, until.isoformat(), reason
            )
            return [hold_sign_in_prompt(f"Freezing {name}", await sign_in_for(ctx, binding))]
        freeze = await changes.holds.freeze(domain, by=ctx.user_id, until=until, reason=reason)
        if ctx.client is not None:
            await tell_frozen(ctx.client, changes, ctx.services.alert_channel, freeze, ctx.channel_id)
        return [text_reply(frozen_text(freeze), icon=":snowflake:")]

    return Prepared(ack=None, work=work)
