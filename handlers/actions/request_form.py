"""The request form: the global shortcut that opens it, and its submission, which takes the typed
command's path (the same subcommand, pre-flight and refusals). A refusal that comes within Slack's
3 seconds is shown on the form, under its field; a later one reaches the requester by direct message."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError, UsageError
from bot.services.container import BotServices
from handlers.boundary import OnceAck, guard, internal_error_text
from handlers.commands import CommandContext, Subcommand, discover
from handlers.notices.direct import direct_message
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, error_reply, typed
from handlers.views.request_form import (
    FORM_ACTIONS,
    REQUEST_FORM,
    REQUEST_SHORTCUT,
    FormAnswers,
    form_answers,
    form_errors,
    request_form,
)

log = logging.getLogger(__name__)

ANSWER_ON_THE_FORM_WITHIN = 2.0  # seconds of Slack's 3 for the pre-flight; later refusals go by direct message


def _parsed(answers: FormAnswers) -> ParsedCommand:
    reason = f"[{answers.ticket}] {answers.reason}" if answers.ticket else answers.reason
    options = {"top-level-names": answers.top_level_names} if answers.top_level_names else {}
    return ParsedCommand(answers.action, (answers.domain,), answers.options, reason, options)


async def _tell(client: AsyncWebClient, user: str, reply: Reply) -> None:
    await direct_message(client, user, reply.text, reply.blocks or ())


def register(app: AsyncApp, services: BotServices, ticket_pattern: str) -> None:
    subcommands: dict[str, Subcommand] = {s.name: s for s in discover() if s.name in FORM_ACTIONS}
    changes = services.changes
    if changes is None:
        return

    async def request_change(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str):
            raise UsageError("Slack sent the shortcut without a trigger to open the form; try it again.")
        team = str((body.get("team") or {}).get("id", ""))
        await client.views_open(trigger_id=trigger, view=request_form(changes.queries.domains, team=team))

    async def request_form_submitted(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        user = str(body["user"]["id"])
        answers = form_answers(body.get("view") or {})
        errors = form_errors(
            answers,
            changes.queries.domains,
            has_approvals_channel=changes.queries.approvals_channel_of(answers.domain) is not None,
            ticket_pattern=ticket_pattern,
        )
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        ctx = CommandContext(
            user_id=user,
            channel_id=answers.channel
            or answers.opened_in
            or changes.queries.approvals_channel_of(answers.domain)
            or "",
            services=services,
            client=client,
            team_id=str((body.get("team") or {}).get("id", "")),
            app_id=str(body.get("api_app_id", "")),
        )
        try:
            prepared = subcommands[answers.action].prepare(_parsed(answers), ctx)
        except KerberosBotError as exc:
            await ack(response_action="errors", errors={"action": typed(exc.user_message)[:1000]})
            return
        if prepared.work is None:
            await ack()
            return
        work = asyncio.ensure_future(prepared.work())
        done, _ = await asyncio.wait({work}, timeout=ANSWER_ON_THE_FORM_WITHIN)
        refusal = work.exception() if done else None
        if isinstance(refusal, KerberosBotError):
            await ack(response_action="errors", errors={"action": typed(refusal.user_message)[:1000]})
            return
        await ack()  # the form closes; the card, the thread and the direct messages say the rest
        try:
            await work
        except KerberosBotError as exc:  # refused after the form closed: the requester hears it directly
            await _tell(client, user, error_reply(exc.user_message))
        except Exception:
            await _tell(client, user, error_reply(internal_error_text("the request form")))

    app.shortcut(REQUEST_SHORTCUT)(guard("request shortcut", request_change))
    app.view(REQUEST_FORM)(guard("request form", request_form_submitted))
