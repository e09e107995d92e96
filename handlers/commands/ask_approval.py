"""What every changing subcommand shares: checks, the request, the card, the reply to the requester."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ACTION_KINDS, ChangeRequest
from bot.domain.errors import UsageError
from bot.services.changes.engine import ChangeEngine
from handlers.commands import CommandContext, Prepared, require_changes
from handlers.notices.alerts import alert
from handlers.notices.cards import card_link, post_card
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, code, person, text_reply
from handlers.views.request_form import FORM_ACTIONS, request_form

# (service, domain, reason, where): ``where`` is the context in the channel the card goes to
Submit = Callable[[ChangeEngine, str, str, CommandContext], Awaitable[ChangeRequest]]


def _open_form(action: str, ctx: CommandContext, changes: ChangeEngine, client: AsyncWebClient) -> Prepared:
    """The bare command (``/kerberos rotate``): the request form, with the action chosen."""
    if not ctx.trigger_id:
        raise UsageError("Slack sent this command without a trigger to open the form; type it in full instead.")

    async def open_it() -> None:
        view = request_form(changes.queries.domains, action=action, opened_in=ctx.channel_id, team=ctx.team_id)
        await client.views_open(trigger_id=ctx.trigger_id, view=view)

    return Prepared(ack=None, now=open_it)


def ask_for_approval(
    command: ParsedCommand, ctx: CommandContext, usage: str, allowed_flags: frozenset[str], submit: Submit
) -> Prepared:
    changes, client = require_changes(ctx)
    bare = not command.args and command.reason is None and not command.flags and not command.options
    if bare and command.name in FORM_ACTIONS:
        return _open_form(command.name, ctx, changes, client)
    if len(command.args) != 1:
        raise UsageError(f"Name one domain: `/kerberos {usage}`.")
    unknown = (command.flags - allowed_flags) | (set(command.options) - allowed_flags)
    if unknown:
        raise UsageError(f"Unknown option `--{sorted(unknown)[0]}`; usage: `/kerberos {usage}`.")
    if not command.reason:
        raise UsageError(f"Say why after ` -- `: `/kerberos {usage}`.")
    domain, reason = command.args[0], command.reason

    async def work() -> list[Reply]:
        # the domain's approvals channel, where one is configured: the card goes there, and only clicks
        # there count (never a private channel the requester picked)
        where = ctx.in_channel(changes.queries.approvals_channel_of(domain) or ctx.channel_id)
        request = await submit(changes, domain, reason, where)
        await post_card(client, changes, request, where.channel_id)
        await alert(client, ctx.services.alert_channel, request, "an emergency rotation was requested")
        terms = f"{request.approvals_required} needed, until {request.expires_at:%H:%M} UTC"
        if where.channel_id == ctx.channel_id:
            return [text_reply(f"Request `{request.id}` is posted for approval ({terms}).", icon=":inbox_tray:")]
        link = await card_link(client, await changes.queries.get(request.id) or request)
        # a short note in the channel it was asked in, pointing at the card
        note = (
            f":inbox_tray: {person(ctx.user_id)} asked for `{ACTION_KINDS[request.action].command}` on "
            f"{code(request.domain)}: request `{request.id}`, for approval in <#{where.channel_id}> ({terms})"
            + (f": <{link}|the card>" if link else "")
        )
        return [Reply(text=note, in_channel=True)]

    return Prepared(ack=text_reply(f"Checking {code(domain)} before asking for approval…", icon=":mag:"), work=work)
