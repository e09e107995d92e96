"""What a click's decision says: to the person who clicked (refusals), on the card and in its thread."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import (
    DecisionResult,
    Verdict,
)
from bot.observability.logs import set_user
from bot.services.changes.engine import ChangeEngine
from handlers.notices.cards import post_in_thread, update_card
from handlers.replies import escape

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


NOT_YET_SAFE = (
    ":warning: Your decision is recorded, but no Redis replica confirmed it in time: should Redis fail over "
    "now, it could be lost. The card shows what is kept; if it does not show your decision in a minute, click again."
)


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
    if result.kept is False and result.verdict in _CARD_CHANGES:
        await client.chat_postEphemeral(channel=channel, user=user, text=NOT_YET_SAFE)
    line = THREAD_LINES.get(result.verdict)
    if request is not None and line:
        card = changes.queries.card(request)  # the thread says what the card says
        identity = next((a.identity for a in request.approvals if a.approver == user and a.identity), None)
        await post_in_thread(
            client,
            request,
            line.format(
                user=user,
                verified=f" ({escape(identity.describe())})" if identity else "",
                count=result.approvals,
                required=card.terms.required,
            ),
        )
