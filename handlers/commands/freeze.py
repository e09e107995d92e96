"""Stop changes in a domain until a time (a change freeze); only an emergency rotation runs meanwhile."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.domain.errors import UsageError
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.commands.announce import announce
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, escape, person, plain, text_reply

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
        freeze = await changes.holds.freeze(domain, by=ctx.user_id, until=until, reason=command.reason or "")
        said = (
            f"{freeze.domain} is frozen until {freeze.until:%Y-%m-%d %H:%M} UTC by {person(freeze.by)}: no change "
            "runs there until then but an emergency rotation. `/kerberos thaw " + freeze.domain + "` ends it sooner."
        )
        # everyone who follows the domain hears of it, the reason as text (a person's words, never markup)
        await announce(ctx, freeze.domain, f":snowflake: {said} Why: {escape(plain(freeze.reason))}")
        return [text_reply(said, icon=":snowflake:")]

    return Prepared(ack=None, work=work)
