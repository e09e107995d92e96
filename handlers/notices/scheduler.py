"""``SlackLifecycleNotices``: how the scheduler reports: the requests it filed, the watch's findings, the digest."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    Action,
    ChangeRequest,
)
from bot.domain.findings import Severity
from bot.services.changes.engine import ChangeEngine
from bot.services.lifecycle import Digest, WatchReport
from handlers.notices.alerts import alert
from handlers.notices.cards import post_card
from handlers.replies import escape
from handlers.views.digest import digest_message

log = logging.getLogger(__name__)


class SlackLifecycleNotices:
    """The scheduler's work in Slack (``LifecycleNotices``): the card of a request it filed, in the
    request's channel, and the watch's findings there, each once."""

    def __init__(
        self,
        client: AsyncWebClient,
        changes: ChangeEngine,
        alert_channel: str | None = None,
        *,
        on_finding: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self._changes = changes
        self._alert_channel = alert_channel
        self._on_finding = on_finding  # the home pages, redrawn when the watch sees something new

    async def filed(self, request: ChangeRequest) -> None:
        if not request.channel:
            return
        await post_card(self._client, self._changes, request, request.channel)
        if request.action == Action.EMERGENCY_REVIEW:
            what = "the review of the emergency rotation waits for two people"
        else:
            what = "the second emergency rotation waits for its approval"
        await alert(self._client, self._alert_channel, request, what)

    async def watched(self, report: WatchReport) -> None:
        finding = report.finding
        if report.resolved:
            text = f":white_check_mark: {report.domain}: resolved: {escape(finding.summary)}"
        else:
            icon = ":red_circle:" if finding.severity >= Severity.CRITICAL else ":large_yellow_circle:"
            text = f"{icon} {report.domain}: {escape(finding.summary)}"
            if finding.advice:
                text += f"\n{escape(finding.advice)}"
            if report.operator_request:
                text += (
                    f"\nRequest `{report.operator_request}` of this domain was handed to an operator to run by hand: "
                    f"what is seen may be their change (`/kerberos history {report.domain}`)."
                )
        await self._client.chat_postMessage(channel=report.channel, text=text)
        if self._on_finding is not None:
            await self._on_finding()

    async def digest(self, digest: Digest) -> None:
        message = digest_message(digest)
        await self._client.chat_postMessage(
            channel=digest.channel, text=message.text, blocks=message.payload()["blocks"]
        )
