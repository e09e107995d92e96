"""Approve clicks, and the verified approvals that finish when the approver's Entra sign-in does.

Each click is acknowledged at once; the decision is one atomic step in the store, so however many
people click however often, a request is decided and executed once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ChangeRequest, Verdict
from bot.domain.errors import KerberosBotError
from bot.observability.logs import set_user
from bot.services.changes.engine import ChangeEngine
from bot.services.verification import ApproverVerification, PendingVerification, SignInFor, VerificationOutcome
from handlers.actions.clicks import Click, clicked, request_id_of
from handlers.boundary import OnceAck, guard
from handlers.notices.decisions import REFUSALS, after_decision
from handlers.notices.freezes import SIGN_IN_TO_HOLD
from handlers.replies import escape
from handlers.views.cards import APPROVE_ACTION, SIGN_IN_LINK_ACTION, sign_in_link_prompt, verification_prompt

log = logging.getLogger(__name__)

_WAITING_FOR_DEVICE_CODES: set[asyncio.Task[None]] = set()  # approvals waiting for their sign-in (kept from the GC)


async def verify_then_approve(
    client: AsyncWebClient,
    changes: ChangeEngine,
    verification: ApproverVerification,
    request: ChangeRequest,
    click: Click,
) -> None:
    """Give the approver the sign-in made for this approval of this request, in ``click.channel`` (the card's
    channel, or their direct conversation with the bot from the home page), where they also hear what became
    of it; the approval is recorded when that sign-in completes (at the callback, or when the device code is
    used)."""
    set_user(click.user)
    changes.metrics.decisions.labels(Verdict.VERIFY_FIRST.value).inc()
    binding = SignInFor(request.id, request.action.value, click.user, click.origin, click.channel)
    try:
        if verification.uses_browser:
            link = await verification.begin_browser(binding)
            prompt = sign_in_link_prompt(request, link.url, link.expected_user, link.expires_at)
        else:
            pending = await verification.start_device_code(binding)
            prompt = verification_prompt(request, pending.prompt, pending.expected_user, again=not pending.new)
            if pending.new:
                task = asyncio.create_task(_after_device_code(client, changes, pending, request, binding))
                _WAITING_FOR_DEVICE_CODES.add(task)
                task.add_done_callback(_WAITING_FOR_DEVICE_CODES.discard)
    except KerberosBotError as exc:
        await client.chat_postEphemeral(
            channel=click.channel,
            user=click.user,
            text=f":warning: Your approval was not counted: {escape(exc.user_message)}",
        )
        return
    await client.chat_postEphemeral(
        channel=click.channel, user=click.user, text=prompt.text, blocks=prompt.payload().get("blocks", [])
    )


async def _after_device_code(
    client: AsyncWebClient,
    changes: ChangeEngine,
    pending: PendingVerification,
    request: ChangeRequest,
    binding: SignInFor,
) -> None:
    try:
        outcome = await asyncio.shield(pending.outcome)
    except asyncio.CancelledError:
        return  # the bot is stopping; the request stays pending
    try:
        await record_sign_in(client, changes, binding, outcome)
    except Exception:
        log.exception("recording the verified approval of %s on %s failed", binding.chat_user, request.id)


async def _tell_slack(call: Awaitable[Any], binding: SignInFor) -> None:
    """What the store decided stands even when Slack cannot be told (the page says it anyway)."""
    try:
        await call
    except Exception:
        log.exception("telling Slack about the sign-in of %s for %s failed", binding.chat_user, binding.request_id)


async def record_replay(client: AsyncWebClient, changes: ChangeEngine, binding: SignInFor) -> None:
    """A used sign-in link came back: audited on its request, and its owner is told (it may not be them)."""
    await changes.decisions.refuse_unverified(
        binding.request_id, binding.chat_user, "a used sign-in link was presented again"
    )
    text = (
        f":warning: Your sign-in link for `{binding.request_id}` was used again; it counts once and nothing was "
        "changed. If that was not you, tell your security team."
    )
    await _tell_slack(client.chat_postEphemeral(channel=binding.channel, user=binding.chat_user, text=text), binding)


@dataclass(frozen=True)
class SignInRecorded:
    """What became of a completed sign-in: the store's verdict when it reached the store."""

    verdict: Verdict | None  # None: the sign-in did not verify the approver, nothing was asked of the store
    request: ChangeRequest | None
    problem: str  # empty when the approval was counted


async def record_sign_in(
    client: AsyncWebClient, changes: ChangeEngine, binding: SignInFor, outcome: VerificationOutcome
) -> SignInRecorded:
    """Turn the outcome of the sign-in made for ``binding`` into the approval (or the refusal) and tell
    the approver, the card and the thread, as a click would."""
    set_user(binding.chat_user)
    user, channel = binding.chat_user, binding.channel
    if outcome.identity is not None:
        result = await changes.decisions.approve(binding.request_id, user, binding.origin, identity=outcome.identity)
        problem = "" if result.verdict in (Verdict.RECORDED, Verdict.APPROVED) else REFUSALS.get(result.verdict, "")
        await _tell_slack(after_decision(client, changes, result, user, channel), binding)
        return SignInRecorded(result.verdict, result.request, problem)
    problem = outcome.problem or "the sign-in did not complete"
    if outcome.abandoned:
        text = (
            f":hourglass: Your approval of `{binding.request_id}` was not counted: {escape(problem)}. "
            "The request stays open; click Approve again to sign in anew."
        )
    else:
        await changes.decisions.refuse_unverified(binding.request_id, user, problem)
        changes.metrics.decisions.labels("unverified").inc()
        text = (
            f":no_entry_sign: Your approval of `{binding.request_id}` was refused: {escape(problem)}. "
            "Nothing was changed."
        )
    await _tell_slack(client.chat_postEphemeral(channel=channel, user=user, text=text), binding)
    return SignInRecorded(None, await changes.queries.get(binding.request_id), problem)


def register(app: AsyncApp, changes: ChangeEngine, verification: ApproverVerification | None = None) -> None:
    async def approve(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = clicked(body)
        set_user(click.user)
        result = await changes.decisions.approve(request_id_of(changes, click.value), click.user, click.origin)
        if result.verdict == Verdict.VERIFY_FIRST and verification is not None and result.request is not None:
            await verify_then_approve(client, changes, verification, result.request, click)
            return
        await after_decision(client, changes, result, click.user, click.channel)

    async def sign_in_link(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # the browser opens the link; Slack only wants to hear the click was received

    app.action(APPROVE_ACTION)(guard("approve click", approve))
    app.action(SIGN_IN_LINK_ACTION)(guard("sign-in link", sign_in_link))
    app.action(SIGN_IN_TO_HOLD)(guard("sign-in link", sign_in_link))  # a freeze's or a thaw's
