"""Deny clicks: a dialog asks for the reason, and its submission denies the request."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import UsageError
from bot.observability.logs import set_user
from bot.services.changes.engine import ChangeEngine
from handlers.actions.clicks import Click, clicked, request_id_of
from handlers.boundary import OnceAck, guard
from handlers.notices.decisions import REFUSALS, after_decision
from handlers.views.cards import DENY_ACTION, button_payload
from handlers.views.modals import DENY_DIALOG, deny_dialog, message_modal


def _deny_metadata(view: dict[str, Any]) -> tuple[Click, str]:
    """The click the dialog was opened for (its user filled in by the caller), and the reason typed."""
    try:
        metadata = json.loads(view.get("private_metadata") or "")
        click = Click(button_payload(metadata["value"]), "", str(metadata["channel"]), str(metadata["origin"]))
        reason = str(view["state"]["values"]["reason"]["reason"]["value"] or "").strip()
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise UsageError("This dialog was not opened by kerberos-bot's Deny button; nothing was changed.") from exc
    return click, reason


def _metadata(click: Click) -> str:
    return json.dumps({"value": click.value, "channel": click.channel, "origin": click.origin})


def register(app: AsyncApp, changes: ChangeEngine) -> None:
    async def deny(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = clicked(body)
        request_id_of(changes, click.value)  # a tampered value is refused now, not after the reason is typed
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str):
            raise UsageError("Slack sent this click without a trigger to open the dialog; click Deny again.")
        await client.views_open(trigger_id=trigger, view=deny_dialog(_metadata(click)))

    async def deny_reason(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click, reason = _deny_metadata(body["view"])
        user = str(body["user"]["id"])
        set_user(user)
        result = await changes.decisions.deny(request_id_of(changes, click.value), user, reason, click.origin)
        refusal = REFUSALS.get(result.verdict)
        if refusal:  # shown in the dialog itself; nothing was changed
            await ack(response_action="update", view=message_modal(refusal))
        else:
            await ack()
        await after_decision(client, changes, result, user, click.channel, tell=refusal is None)

    app.action(DENY_ACTION)(guard("deny click", deny))
    app.view(DENY_DIALOG)(guard("deny dialog", deny_reason))
