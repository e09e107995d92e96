"""``SlackChangeNotices``: how the change worker (``bot.workers.changes``) reports on the card and in its thread."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    ACTION_KINDS,
    ChangeRequest,
    Verdict,
)
from bot.services.changes.decisions import Reminder
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Deferral, Execution, HandedOver
from bot.services.changes.queries import KeyPropagation
from handlers.notices.alerts import alert
from handlers.notices.cards import card_link, post_in_thread, update_card
from handlers.notices.decisions import THREAD_LINES
from handlers.notices.direct import direct_message
from handlers.replies import escape, person
from handlers.views.blocks import SECTION_TEXT, clip
from handlers.views.cards import group_mentions

log = logging.getLogger(__name__)


class SlackChangeNotices:
    """The change worker's reports, on the request's card and in its thread (``ChangeNotices``); what
    becomes of an emergency also goes to the alert channel."""

    def __init__(self, client: AsyncWebClient, changes: ChangeEngine, alert_channel: str | None = None) -> None:
        self._client = client
        self._changes = changes
        self._alert_channel = alert_channel

    async def carried_out(self, execution: Execution) -> None:
        request = execution.request
        await update_card(self._client, self._changes, request)
        icon = ":white_check_mark:" if execution.succeeded else ":x:"
        # an outcome is text: a module's error line may hold anything, so it never renders as markup
        await post_in_thread(self._client, request, f"{icon} {escape(execution.outcome)}")
        await alert(self._client, self._alert_channel, request, f"{icon} {escape(execution.outcome)}")

    async def handed_over(self, handed: HandedOver) -> None:
        request, handover = handed.request, handed.handover
        await update_card(self._client, self._changes, request)
        link = await card_link(self._client, request)
        line = (
            f":technologist: Approved, and handed to {person(handover.operator)} to run with their own MFA sign-in, "
            f"until {handover.until:%H:%M} UTC: the command is on the card"
            + (f" (<{link}|open it>)" if link else "")
            + f". Then `/kerberos done {request.id}`; the bot verifies from AD and Entra's audit log."
        )
        await post_in_thread(self._client, request, line)
        try:
            await direct_message(
                self._client,
                handover.operator,
                f"You are named to run request {request.id}",
                [SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT)))],
            )
        except Exception:  # the thread names them too; a DM that cannot be sent loses nothing
            log.warning("could not tell operator %s of request %s in a direct message", handover.operator, request.id)

    async def waiting(self, deferral: Deferral) -> None:
        request = deferral.request
        await update_card(self._client, self._changes, request)
        when = escape(deferral.windows.local(deferral.runs_at))
        await post_in_thread(
            self._client, request, f":calendar: Approved outside the change window: it waits, and runs at {when}."
        )

    async def reminded(self, reminder: Reminder) -> None:
        request, policy = reminder.request, reminder.policy
        terms = self._changes.queries.card(request).terms
        who = group_mentions(terms.groups)
        minutes = max(0, int((request.expires_at - self._changes.queries.now()).total_seconds() // 60))
        line = (
            f":alarm_clock: Reminder {reminder.number} of {len(policy.at)}: request `{request.id}` still waits for "
            f"approval ({len(request.approvals)} of {request.approvals_required}); it expires at "
            f"{request.expires_at:%H:%M} UTC, in {minutes} min. {who}"
        )
        if reminder.escalates and (group := policy.fallback_for(request.action)) is not None:
            fallback = group_mentions([group])
            line += f"\n:arrow_double_up: Escalated: members of {fallback} may approve it now."
        await post_in_thread(self._client, request, line)
        if reminder.escalates and policy.fallback_channel:
            link = await card_link(self._client, request)
            note = (
                f":arrow_double_up: Request `{request.id}` ({ACTION_KINDS[request.action].title}: "
                f"{escape(request.domain)}) has had no decision; it expires at {request.expires_at:%H:%M} UTC"
                + (f": <{link}|the card>" if link else "")
            )
            await self._client.chat_postMessage(channel=policy.fallback_channel, text=note)

    async def expired(self, request: ChangeRequest) -> None:
        await update_card(self._client, self._changes, request)
        await post_in_thread(
            self._client,
            request,
            f":clock3: {escape(request.outcome)}" if request.outcome else THREAD_LINES[Verdict.EXPIRED],
        )

    async def flagged(self, request: ChangeRequest) -> None:
        await update_card(self._client, self._changes, request)
        await post_in_thread(self._client, request, f":rotating_light: {escape(request.outcome or '')}")

    async def key_progress(self, request: ChangeRequest, key_version: int, step: KeyPropagation) -> None:
        minutes = step.waited.total_seconds() / 60
        await post_in_thread(
            self._client,
            request,
            f":satellite_antenna: After {minutes:.0f} min the new key (KeyVersion {key_version}) is on "
            f"{', '.join(step.agreed) or 'no DC yet'}; still waiting for {', '.join(step.lagging)} "
            "(replication between DCs).",
        )

    async def key_followed(self, request: ChangeRequest, key_version: int, result: KeyPropagation) -> None:
        if not result.lagging:
            text = (
                f":satellite_antenna: Every configured DC of {request.domain} holds the new key "
                f"(KeyVersion {key_version}): {', '.join(result.agreed)}."
            )
        else:
            hours = result.waited.total_seconds() / 3600
            text = (
                f":hourglass: After {hours:.1f} h these DCs of {request.domain} still show an older key or do not "
                f"answer: {', '.join(result.lagging)}. Check replication before rotating again."
            )
        await post_in_thread(self._client, request, text)
