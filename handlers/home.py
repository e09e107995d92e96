"""The bot's home page in Slack (App Home): drawn when someone opens it, redrawn for those who did when a
request changes or the watch sees something; its Approve and Deny buttons decide as the card's do, from
the same stored request (a click counts as made on the request's card: same workspace and app only)."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import ChangeRequest, RequestChange, Verdict
from bot.domain.card import RequestCard
from bot.domain.errors import UsageError
from bot.domain.history import Event
from bot.observability.logs import set_user
from bot.services.changes.engine import ChangeEngine
from bot.services.home import HomeService
from bot.services.verification import ApproverVerification
from handlers.actions.approve import verify_then_approve
from handlers.actions.clicks import Click, request_id_of
from handlers.boundary import OnceAck, guard
from handlers.notices.cards import card_link
from handlers.notices.decisions import REFUSALS, after_decision
from handlers.notices.direct import direct_channel, direct_message
from handlers.views.cards import button_payload
from handlers.views.home import HOME_APPROVE, HOME_DENY, HOME_DMS, home_view
from handlers.views.modals import deny_dialog

log = logging.getLogger(__name__)

REDRAW_AT_MOST = 50  # home pages redrawn per change; beyond that, people see it when they next open theirs


class SlackHome:
    """Draws and redraws people's home pages (``RequestWatcher`` too: a request's change redraws them)."""

    def __init__(self, client: AsyncWebClient, home: HomeService, changes: ChangeEngine) -> None:
        self._client = client
        self._home = home
        self._changes = changes

    async def publish(self, user: str) -> None:
        page = await self._home.page(user)
        await self._client.views_publish(user_id=user, view=home_view(page, self._changes.decisions.button_value))

    async def opened(self, user: str) -> None:
        await self._home.opened(user)
        await self.publish(user)

    async def set_direct_messages(self, user: str, *, on: bool) -> None:
        await self._home.set_direct_messages(user, on=on)
        await self.publish(user)

    async def redraw(self, first: str | None = None, *, only: frozenset[str] | None = None) -> None:
        """The pages someone opened (of ``only``, when given; ``first`` before the others), each failure on
        its own."""
        viewers = sorted(v for v in await self._home.viewers() if only is None or v in only)
        ordered = ([first] if first in viewers else []) + [v for v in viewers if v != first]
        for user in ordered[:REDRAW_AT_MOST]:
            try:
                await self.publish(user)
            except Exception:
                log.warning("could not redraw the home page of %s", user, exc_info=True)

    async def request_changed(self, card: RequestCard, change: RequestChange) -> None:
        """The pages of those it concerns: its requester, its possible approvers, and everyone it was handed to
        to run (a change taken over leaves the page of the one first named)."""
        request = card.request
        operators = {entry.actor for entry in request.history if entry.event == Event.HANDED_OVER}
        concerned = await self._changes.authority.concerned_with(request)
        await self.redraw(request.requester, only=concerned | operators)


def _clicked(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(user, button value, team, app) of a click on the home page."""
    action = body["actions"][0]
    team = body.get("team")
    team_id = str(team.get("id", "")) if isinstance(team, dict) else ""
    return str(body["user"]["id"]), button_payload(action.get("value")), team_id, str(body.get("api_app_id", ""))


async def _request_for(changes: ChangeEngine, value: str, team: str, app: str) -> ChangeRequest:
    request = await changes.queries.get(request_id_of(changes, value))
    if request is None:
        raise UsageError("This request no longer exists.")
    # the home page is the app's own, in its workspace: a click there counts as on the card, never from elsewhere
    if request.origin and not request.origin.startswith(f"{team}/{app}/"):
        raise UsageError(REFUSALS[Verdict.WRONG_ORIGIN])
    return request


def register(
    app: AsyncApp, home: SlackHome, changes: ChangeEngine, verification: ApproverVerification | None = None
) -> None:
    async def home_opened(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        event = body.get("event") or {}
        if event.get("tab") != "home" or not isinstance(event.get("user"), str):
            return
        set_user(event["user"])
        await home.opened(event["user"])

    async def home_dms(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str(body["user"]["id"])
        value = body["actions"][0].get("value")
        if value not in ("on", "off"):
            raise UsageError("That setting is not one the bot offers.")
        await home.set_direct_messages(user, on=value == "on")

    async def home_approve(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user, value, team, app_id = _clicked(body)
        set_user(user)
        request = await _request_for(changes, value, team, app_id)
        if changes.queries.approvals_channel_of(request.domain) is not None:
            # the domain's approvals count only from its approvals channel: the home page sends them there
            link = await card_link(client, request)
            where = f": {link}" if link else " in the domain's approvals channel"
            await direct_message(client, user, f"`{request.id}` is approved on its card{where}")
            return
        result = await changes.decisions.approve(request.id, user, request.origin)
        if result.verdict == Verdict.VERIFY_FIRST and verification is not None and result.request is not None:
            # the sign-in starts here as on the card: its link, and what became of it, in the approver's direct
            # conversation with the bot (the card's channel may be one they are not in)
            click = Click(value, user, await direct_channel(client, user), request.origin)
            await verify_then_approve(client, changes, verification, result.request, click)
            return
        if result.verdict == Verdict.VERIFY_FIRST:
            link = await card_link(client, request)
            where = f" on its card: {link}" if link else " on its card"
            await direct_message(client, user, f"Approving `{request.id}` needs an Entra sign-in: approve it{where}")
            return
        await after_decision(client, changes, result, user, request.channel or "", tell=False)
        refusal = REFUSALS.get(result.verdict)
        if refusal:
            await direct_message(client, user, refusal)
        await home.publish(user)

    async def home_deny(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        _user, value, team, app_id = _clicked(body)
        request = await _request_for(changes, value, team, app_id)
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str):
            raise UsageError("Slack sent this click without a trigger to open the dialog; click Deny again.")
        metadata = json.dumps({"value": value, "channel": request.channel or "", "origin": request.origin})
        await client.views_open(trigger_id=trigger, view=deny_dialog(metadata))

    app.event("app_home_opened")(guard("home opened", home_opened))
    app.action(HOME_DMS)(guard("home setting", home_dms))
    app.action(HOME_APPROVE)(guard("home approve", home_approve))
    app.action(HOME_DENY)(guard("home deny", home_deny))
