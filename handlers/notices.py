"""What people are told about a request in Slack: its card, its thread, the person who clicked.

``SlackChangeNotices`` is how the change worker (``bot.workers.changes``) reports, and the click
handlers (``handlers.actions``) use the same card and thread lines.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, PlainTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    ACTION_KINDS,
    Action,
    ChangeRequest,
    DecisionResult,
    RequestChange,
    RequestChangeKind,
    Verdict,
)
from bot.domain.diagnosis import Severity
from bot.domain.errors import KerberosBotError
from bot.domain.ports import NoticePreferences
from bot.observability.logs import set_user
from bot.services.changes.decisions import Reminder
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Deferral, Execution
from bot.services.changes.queries import KeyPropagation
from bot.services.lifecycle import Digest, WatchReport
from handlers.replies import Reply, escape, is_slack_user, person, plain
from handlers.views.blocks import SECTION_TEXT, clip, plain_context
from handlers.views.cards import approval_terms, group_mentions, request_card
from handlers.views.digest import digest_message

log = logging.getLogger(__name__)

REFUSALS = {
    Verdict.NOT_ALLOWED: "You are not in a group allowed to approve this action; nothing was changed.",
    Verdict.WRONG_ORIGIN: "This request was made in another channel (or workspace); it can only be decided on its "
    "own card there. Nothing was changed.",
    Verdict.SAME_PERSON: "Your Entra account has already approved this request from another Slack account; a "
    "second approver must be another person. Nothing was changed.",
    Verdict.VERIFY_FIRST: "This action needs an approval verified by an Entra sign-in, which is not configured; "
    "nothing was changed.",
    Verdict.SELF_APPROVAL: "You asked for this change, so someone else has to approve it.",
    Verdict.DUPLICATE: "Your approval is already counted.",
    Verdict.NOT_PENDING: "This request is already decided.",
    Verdict.EXPIRED: "This request has expired; ask again if it is still needed.",
    Verdict.NOT_FOUND: "This request no longer exists.",
}


async def post_card(client: AsyncWebClient, changes: ChangeEngine, request: ChangeRequest, channel: str) -> None:
    """The request's card, posted in ``channel``; the store learns where it is, to update it in place."""
    card = _card(changes, request)
    posted = await client.chat_postMessage(channel=channel, text=card.text, blocks=card.payload()["blocks"])
    await changes.decisions.card_posted(request.id, str(posted["channel"]), str(posted["ts"]))


async def card_link(client: AsyncWebClient, request: ChangeRequest) -> str | None:
    """A link to the request's card (chat.getPermalink), or None when it cannot be had."""
    if not (request.channel and request.message_ts):
        return None
    try:
        answer = await client.chat_getPermalink(channel=request.channel, message_ts=request.message_ts)
    except SlackApiError as exc:
        log.warning("no link to the card of %s: %s", request.id, exc.response.get("error"))
        return None
    link = answer.get("permalink")
    return link if isinstance(link, str) and link.startswith("https://") else None


def _card(changes: ChangeEngine, request: ChangeRequest, now: datetime | None = None) -> Reply:
    return request_card(
        request,
        changes.decisions.button_value(request),
        approval_terms(changes, request),
        now,
        timing=changes.holds.timing_of(request),
    )


async def update_card(client: AsyncWebClient, changes: ChangeEngine, request: ChangeRequest) -> None:
    """The card redrawn from ``request``, then from the stored request for as long as that says more: updates
    sent by several replicas and clicks at once can land at Slack in any order, and whoever lands last
    looks again, so an older rendering never stays over a newer one (a card left "Waiting for approval"
    on a request that is done)."""
    channel, ts = request.channel, request.message_ts
    if not (channel and ts):
        return
    shown, now = None, changes.queries.now()  # one moment for every rendering: they differ by the request only
    for _ in range(3):
        card = _card(changes, request, now)
        blocks = card.payload()["blocks"]
        if blocks == shown:
            return
        await client.chat_update(channel=channel, ts=ts, text=card.text, blocks=blocks)
        shown = blocks
        latest = await changes.queries.get(request.id)
        if latest is None:
            return
        request = latest


THREAD_LINES = {
    Verdict.RECORDED: ":ballot_box_with_check: <@{user}> approved{verified} ({count} of {required}).",
    Verdict.APPROVED: ":white_check_mark: <@{user}> approved{verified} ({count} of {required}): the change starts.",
    Verdict.DENIED: ":no_entry: <@{user}> denied it; the reason is on the card.",
    Verdict.EXPIRED: ":clock3: The request expired before enough approvals.",
}
# Refused clicks get no thread line: they are answered to the person who clicked (ephemerally) and
# audited once, so nobody can fill a request's thread by clicking.


# the verdicts that change what the card shows; a refused click leaves it as it is
_CARD_CHANGES = frozenset({Verdict.RECORDED, Verdict.APPROVED, Verdict.DENIED, Verdict.EXPIRED, Verdict.NOT_PENDING})


async def post_in_thread(client: AsyncWebClient, request: ChangeRequest, text: str) -> None:
    if request.channel and request.message_ts:
        await client.chat_postMessage(channel=request.channel, thread_ts=request.message_ts, text=text)


async def after_decision(
    client: AsyncWebClient,
    changes: ChangeEngine,
    result: DecisionResult,
    user: str,
    channel: str,
    *,
    tell: bool = True,
) -> None:
    set_user(user)
    changes.metrics.decisions.labels(result.verdict.value).inc()
    log.info("click on request %s: %s", result.request.id if result.request else "?", result.verdict.value)
    request = result.request
    if request is not None and result.verdict in _CARD_CHANGES:
        await update_card(client, changes, request)
    refusal = REFUSALS.get(result.verdict)
    if refusal and tell:
        await client.chat_postEphemeral(channel=channel, user=user, text=refusal)
    line = THREAD_LINES.get(result.verdict)
    if request is not None and line:
        identity = next((a.identity for a in request.approvals if a.approver == user and a.identity), None)
        await post_in_thread(
            client,
            request,
            line.format(
                user=user,
                verified=f" ({escape(identity.describe())})" if identity else "",
                count=result.approvals,
                required=request.approvals_required,
            ),
        )


EMERGENCIES = frozenset({Action.EMERGENCY_ROTATE, Action.EMERGENCY_REVIEW})


async def alert(client: AsyncWebClient, alert_channel: str | None, request: ChangeRequest, what: str) -> None:
    """Tell the alert channel about an emergency request: what happened (the bot's words), who asked, and
    their reason as plain text."""
    if alert_channel is None or request.action not in EMERGENCIES:
        return
    where = f" in <#{request.channel}>" if request.channel else ""
    line = (
        f":rotating_light: *{request.domain}*: {what} (request `{request.id}`, by {person(request.requester)}{where})"
    )
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=line)),
        ContextBlock(elements=[PlainTextObject(text=f"Reason: {plain(request.reason)}", emoji=False)]),
    ]
    await client.chat_postMessage(
        channel=alert_channel, text=f"Emergency rotation: {request.domain}", blocks=[b.to_dict() for b in blocks]
    )


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

    async def waiting(self, deferral: Deferral) -> None:
        request = deferral.request
        await update_card(self._client, self._changes, request)
        when = escape(deferral.windows.local(deferral.runs_at))
        await post_in_thread(
            self._client, request, f":calendar: Approved outside the change window: it waits, and runs at {when}."
        )

    async def reminded(self, reminder: Reminder) -> None:
        request, policy = reminder.request, reminder.policy
        terms = approval_terms(self._changes, request)
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
        await self._client.chat_postMessage(channel=report.channel, text=text)
        if self._on_finding is not None:
            await self._on_finding()

    async def digest(self, digest: Digest) -> None:
        message = digest_message(digest)
        await self._client.chat_postMessage(
            channel=digest.channel, text=message.text, blocks=message.payload()["blocks"]
        )


async def direct_message(client: AsyncWebClient, user: str, text: str, blocks: Sequence[Block] = ()) -> None:
    """A message in the bot's direct conversation with ``user`` (im:write)."""
    opened = (await client.conversations_open(users=user)).get("channel")
    channel = opened.get("id") if isinstance(opened, dict) else None
    if not isinstance(channel, str):
        raise KerberosBotError(f"conversations.open gave no channel for {user}")
    await client.chat_postMessage(channel=channel, text=text, blocks=[b.to_dict() for b in blocks] or None)


_REQUESTER_LINES = {
    RequestChangeKind.POSTED: ":inbox_tray: Your request {ref} is posted for approval ({needs}).",
    RequestChangeKind.APPROVAL: ":ballot_box_with_check: {actor} approved your request {ref} ({count} of {required}).",
    RequestChangeKind.APPROVED: ":white_check_mark: {actor} approved your request {ref}: it is approved and starts.",
    RequestChangeKind.DENIED: ":no_entry: {actor} denied your request {ref}.",
    RequestChangeKind.CANCELLED: ":leftwards_arrow_with_hook: {actor} withdrew your request {ref}.",
    RequestChangeKind.EXPIRED: ":clock3: Your request {ref} expired: {detail}",
    RequestChangeKind.WAITING: ":calendar: Your request {ref} is approved, outside the change window: it runs at "
    "{detail}.",
    RequestChangeKind.SUCCEEDED: ":white_check_mark: Your request {ref} is done: {detail}",
    RequestChangeKind.FAILED: ":x: Your request {ref} failed: {detail}",
    RequestChangeKind.ATTENTION: ":rotating_light: Your request {ref} needs attention: {detail}",
}
MUTE_HINT = "`/kerberos notify off` stops these messages"


class SlackRequesterMessages:
    """The requester hears every change of their request in a direct message, with a link to its card
    (``RequestWatcher``), unless they turned these messages off (``NoticePreferences``). The bot's own
    requests (scheduled ones) have no person to tell."""

    def __init__(self, client: AsyncWebClient, preferences: NoticePreferences | None = None) -> None:
        self._client = client
        self._preferences = preferences

    async def request_changed(self, request: ChangeRequest, change: RequestChange) -> None:
        requester = request.requester
        if not is_slack_user(requester):
            return
        if self._preferences is not None and await self._preferences.muted(requester):
            return
        line = self._line(request, change)
        blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT)))]
        if change.kind == RequestChangeKind.DENIED and change.detail:
            # the approver's words: plain text, never markup
            blocks.append(plain_context(f"Reason for the denial: {plain(change.detail)}"))
        link = await card_link(self._client, request)
        footer = (f"<{link}|Open the card> · " if link else "") + MUTE_HINT
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
        await direct_message(self._client, requester, f"Request {request.id}: {change.kind.value}", blocks)

    @staticmethod
    def _line(request: ChangeRequest, change: RequestChange) -> str:
        ref = f"`{request.id}` ({ACTION_KINDS[request.action].title}: {escape(request.domain)})"
        if change.kind == RequestChangeKind.POSTED and request.approved_with:
            return f":white_check_mark: Your request {ref} is filed approved, together with `{request.approved_with}`."
        needs = f"{request.approvals_required} approvals needed, until {request.expires_at:%Y-%m-%d %H:%M} UTC"
        if change.kind == RequestChangeKind.POSTED and request.channel:
            needs += f", in <#{request.channel}>"
        detail = escape(change.detail) if change.detail else "not enough approvals in time."
        return _REQUESTER_LINES[change.kind].format(
            ref=ref,
            actor=person(change.actor) if change.actor else "Someone",
            count=change.count,
            required=request.approvals_required,
            needs=needs,
            detail=detail,
        )
