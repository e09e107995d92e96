"""Approve and Deny clicks on request cards, the deny-reason dialog, and the worker that carries out
approved requests and reports on the card and in its thread.

Each click is acknowledged at once; the decision is one atomic step in the store, so however many
people click however often, a request is decided and executed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ChangeRequest, DecisionResult, Verdict
from bot.domain.errors import KerberosBotError, UsageError
from bot.logs import set_user
from bot.metrics import DECISIONS
from bot.services.changes import ChangeService, KeyPropagation
from bot.services.verification import ApproverVerification, PendingVerification, SignInFor, VerificationOutcome
from handlers.boundary import OnceAck, guard, message_modal
from handlers.messages import escape
from handlers.views import (
    APPROVE_ACTION,
    DENY_ACTION,
    SIGN_IN_LINK_ACTION,
    TamperedButton,
    approval_terms,
    button_payload,
    request_card,
    sign_in_link_prompt,
    verification_prompt,
)

log = logging.getLogger(__name__)
DENY_DIALOG = "kerberos_deny_reason"

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


async def update_card(client: AsyncWebClient, changes: ChangeService, request: ChangeRequest) -> None:
    if not (request.channel and request.message_ts):
        return
    card = request_card(request, changes.button_value(request), approval_terms(changes, request))
    await client.chat_update(
        channel=request.channel, ts=request.message_ts, text=card.text, blocks=card.payload()["blocks"]
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


async def post_in_thread(client: AsyncWebClient, request: ChangeRequest, text: str) -> None:
    if request.channel and request.message_ts:
        await client.chat_postMessage(channel=request.channel, thread_ts=request.message_ts, text=text)


async def _after_decision(
    client: AsyncWebClient,
    changes: ChangeService,
    result: DecisionResult,
    user: str,
    channel: str,
    *,
    tell: bool = True,
) -> None:
    set_user(user)
    DECISIONS.labels(result.verdict.value).inc()
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


async def _verify_then_approve(
    client: AsyncWebClient,
    changes: ChangeService,
    verification: ApproverVerification,
    request: ChangeRequest,
    click: Click,
    background: set[asyncio.Task[None]],
) -> None:
    """Give the approver the sign-in made for this approval of this request; the approval is recorded
    when that sign-in completes (at the callback, or when the device code is used)."""
    set_user(click.user)
    DECISIONS.labels(Verdict.VERIFY_FIRST.value).inc()
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
                background.add(task)
                task.add_done_callback(background.discard)
    except KerberosBotError as exc:
        await client.chat_postEphemeral(
            channel=click.channel, user=click.user, text=f":warning: Your approval was not counted: {exc.user_message}"
        )
        return
    await client.chat_postEphemeral(
        channel=click.channel, user=click.user, text=prompt.text, blocks=prompt.payload().get("blocks", [])
    )


async def _after_device_code(
    client: AsyncWebClient,
    changes: ChangeService,
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


async def record_replay(client: AsyncWebClient, changes: ChangeService, binding: SignInFor) -> None:
    """A used sign-in link came back: audited on its request, and its owner is told (it may not be them)."""
    await changes.refuse_unverified(binding.request_id, binding.chat_user, "a used sign-in link was presented again")
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
    client: AsyncWebClient, changes: ChangeService, binding: SignInFor, outcome: VerificationOutcome
) -> SignInRecorded:
    """Turn the outcome of the sign-in made for ``binding`` into the approval (or the refusal) and tell
    the approver, the card and the thread, as a click would."""
    set_user(binding.chat_user)
    user, channel = binding.chat_user, binding.channel
    if outcome.identity is not None:
        result = await changes.approve(binding.request_id, user, binding.origin, identity=outcome.identity)
        problem = "" if result.verdict in (Verdict.RECORDED, Verdict.APPROVED) else REFUSALS.get(result.verdict, "")
        await _tell_slack(_after_decision(client, changes, result, user, channel), binding)
        return SignInRecorded(result.verdict, result.request, problem)
    problem = outcome.problem or "the sign-in did not complete"
    if outcome.abandoned:
        text = (
            f":hourglass: Your approval of `{binding.request_id}` was not counted: {escape(problem)}. "
            "The request stays open; click Approve again to sign in anew."
        )
    else:
        await changes.refuse_unverified(binding.request_id, user, problem)
        DECISIONS.labels("unverified").inc()
        text = (
            f":no_entry_sign: Your approval of `{binding.request_id}` was refused: {escape(problem)}. "
            "Nothing was changed."
        )
    await _tell_slack(client.chat_postEphemeral(channel=channel, user=user, text=text), binding)
    return SignInRecorded(None, await changes.get(binding.request_id), problem)


@dataclass(frozen=True)
class Click:
    value: str  # the button's value, checked for its shape
    user: str
    channel: str
    origin: str  # "<team>/<app>/<channel>": the store refuses a click from elsewhere than the request


def _clicked(body: dict[str, Any]) -> Click:
    """Who clicked which button where; the gate in front of Bolt checked the payload's shape."""
    action = body["actions"][0]
    channel = body.get("channel")
    if not isinstance(channel, dict) or not channel.get("id"):
        raise UsageError("This button works only on a request's card in its channel; nothing was changed.")
    team = body.get("team")
    team_id = str(team.get("id", "")) if isinstance(team, dict) else ""
    origin = f"{team_id}/{body.get('api_app_id', '')}/{channel['id']}"
    return Click(button_payload(action.get("value")), str(body["user"]["id"]), str(channel["id"]), origin)


def _request_id(changes: ChangeService, value: str) -> str:
    request_id = changes.request_id_of(value)
    if request_id is None:
        raise TamperedButton()
    return request_id


def _deny_dialog(click: Click) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_DIALOG,
        "private_metadata": json.dumps({"value": click.value, "channel": click.channel, "origin": click.origin}),
        "title": {"type": "plain_text", "text": "Deny the request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why? The requester and the channel will see it."},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 500,
                },
            }
        ],
    }


def _deny_metadata(view: dict[str, Any]) -> tuple[Click, str]:
    """The click the dialog was opened for (its user filled in by the caller), and the reason typed."""
    try:
        metadata = json.loads(view.get("private_metadata") or "")
        click = Click(button_payload(metadata["value"]), "", str(metadata["channel"]), str(metadata["origin"]))
        reason = str(view["state"]["values"]["reason"]["reason"]["value"] or "").strip()
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise UsageError("This dialog was not opened by kerberos-bot's Deny button; nothing was changed.") from exc
    return click, reason


def register(app: AsyncApp, changes: ChangeService, verification: ApproverVerification | None = None) -> None:
    background: set[asyncio.Task[None]] = set()  # clicks waiting for their approver's Entra sign-in

    async def approve(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = _clicked(body)
        set_user(click.user)
        result = await changes.approve(_request_id(changes, click.value), click.user, click.origin)
        if result.verdict == Verdict.VERIFY_FIRST and verification is not None and result.request is not None:
            await _verify_then_approve(client, changes, verification, result.request, click, background)
            return
        await _after_decision(client, changes, result, click.user, click.channel)

    async def deny(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = _clicked(body)
        _request_id(changes, click.value)  # a tampered value is refused now, not after the reason is typed
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str):
            raise UsageError("Slack sent this click without a trigger to open the dialog; click Deny again.")
        await client.views_open(trigger_id=trigger, view=_deny_dialog(click))

    async def deny_reason(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click, reason = _deny_metadata(body["view"])
        user = str(body["user"]["id"])
        set_user(user)
        result = await changes.deny(_request_id(changes, click.value), user, reason, click.origin)
        refusal = REFUSALS.get(result.verdict)
        if refusal:  # shown in the dialog itself; nothing was changed
            await ack(response_action="update", view=message_modal(refusal))
        else:
            await ack()
        await _after_decision(client, changes, result, user, click.channel, tell=refusal is None)

    async def sign_in_link(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # the browser opens the link; Slack only wants to hear the click was received

    app.action(APPROVE_ACTION)(guard("approve click", approve))
    app.action(SIGN_IN_LINK_ACTION)(guard("sign-in link", sign_in_link))
    app.action(DENY_ACTION)(guard("deny click", deny))
    app.view(DENY_DIALOG)(guard("deny dialog", deny_reason))


class ChangeWorker:
    """Takes approved requests from the store and carries them out, one at a time per worker."""

    def __init__(
        self,
        changes: ChangeService,
        client: AsyncWebClient,
        name: str = "worker-1",
        *,
        follow_interval: timedelta = timedelta(minutes=5),
        follow_for: timedelta = timedelta(hours=8),
        sweep_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._sweep_every = sweep_every.total_seconds()
        self._changes = changes
        self._client = client
        self._name = name
        self._follow_interval = follow_interval
        self._follow_for = follow_for
        self._task: asyncio.Task[None] | None = None
        self._followers: set[asyncio.Task[None]] = set()

    async def run_once(self, block_ms: int = 1000) -> bool:
        execution = await self._changes.execute_next(self._name, block_ms)
        if execution is None:
            return False
        request = execution.request
        await update_card(self._client, self._changes, request)
        icon = ":white_check_mark:" if execution.succeeded else ":x:"
        await post_in_thread(self._client, request, f"{icon} {execution.outcome}")
        if execution.new_key_version is not None:
            follower = asyncio.create_task(self._follow(request, execution.new_key_version))
            self._followers.add(follower)
            follower.add_done_callback(self._followers.discard)
        return True

    async def _follow(self, request: ChangeRequest, key_version: int) -> None:
        """Tell the thread when every DC of the domain holds the new key, or which still lag."""

        async def progress(step: KeyPropagation) -> None:
            minutes = step.waited.total_seconds() / 60
            await post_in_thread(
                self._client,
                request,
                f":satellite_antenna: After {minutes:.0f} min the new key (KeyVersion {key_version}) is on "
                f"{', '.join(step.agreed) or 'no DC yet'}; still waiting for {', '.join(step.lagging)} "
                "(replication between DCs).",
            )

        try:
            result = await self._changes.follow_key(
                request.domain,
                key_version,
                interval=self._follow_interval,
                give_up_after=self._follow_for,
                on_progress=progress,
            )
        except Exception:
            log.exception("following the key of %s failed", request.domain)
            return
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

    async def expire(self) -> None:
        """Pending requests whose time is up: expired, their card and thread say so."""
        for request in await self._changes.expire_due():
            await update_card(self._client, self._changes, request)
            await post_in_thread(
                self._client,
                request,
                f":clock3: {escape(request.outcome)}" if request.outcome else THREAD_LINES[Verdict.EXPIRED],
            )

    async def recover(self) -> None:
        """Requests a dead worker left mid-action are flagged, shown on their card, never re-run."""
        for request in await self._changes.recover():
            await update_card(self._client, self._changes, request)
            await post_in_thread(self._client, request, f":rotating_light: {request.outcome}")

    async def sweep(self) -> None:
        """What every worker does every few seconds: expire, flag the requests of dead workers, forget old ones."""
        await self.expire()
        await self.recover()
        await self._changes.sweep()

    async def _loop(self) -> None:
        next_sweep = 0.0
        failures = 0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    await self.sweep()
                    next_sweep = time.monotonic() + self._sweep_every
                await self.run_once(block_ms=int(min(1.0, self._sweep_every) * 1000))
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                pause = min(10.0, float(2 ** min(failures, 4)) / 2)  # 1 s, 2 s, 4 s, 8 s, 10 s
                if isinstance(exc, KerberosBotError):
                    log.warning("the change worker could not go on (%s); retrying in %g s", exc.user_message, pause)
                else:
                    log.exception("the change worker failed; retrying in %g s", pause)
                await asyncio.sleep(pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"change-{self._name}")

    async def stop(self) -> None:
        for follower in list(self._followers):
            follower.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
