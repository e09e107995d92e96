"""The request form through signed requests: `/kerberos rotate` without arguments and the global
shortcut open it; a submission with mistakes gets them back under their fields (response_action:
errors) and nothing is asked; a valid one takes the typed command's path (the same card, plan and
origin, the ticket with the reason); a pre-flight refusal shows on the form, or by direct message when
it comes after Slack's 3 seconds."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import (
    interaction_form,
    send_slash_command,
    shortcut_payload,
    signed_headers,
    slash_command_form,
    view_submission_payload,
)
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.model import OnPremState
from bot.services.container import BotServices
from handlers.actions import request_form as form_handlers
from handlers.views.request_form import REQUEST_FORM, REQUEST_SHORTCUT
from tests.support.botserver import RunningBot, running_bot
from tests.support.fakes import NOW, FakeDirectory, on_prem_state
from tests.support.worlds import one_domain

CHANNEL = "C0PLATFORM"


def values(
    action: str = "rotate",
    domain: str = "contoso.test",
    reason: str = "quarterly rotation",
    ticket: str = "",
    options: tuple[str, ...] = (),
    channel: str = CHANNEL,
) -> dict[str, Any]:
    return {
        "action": {"action": {"type": "static_select", "selected_option": {"value": action}}},
        "domain": {"domain": {"type": "static_select", "selected_option": {"value": domain}}},
        "reason": {"reason": {"type": "plain_text_input", "value": reason}},
        "ticket": {"ticket": {"type": "plain_text_input", "value": ticket or None}},
        "options": {"options": {"type": "checkboxes", "selected_options": [{"value": o} for o in options]}},
        "tlns": {"tlns": {"type": "plain_text_input", "value": None}},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": channel or None}},
    }


async def post(session: aiohttp.ClientSession, bot: RunningBot, payload: dict[str, Any]) -> str:
    body = interaction_form(payload)
    async with session.post(bot.endpoint, data=body, headers=signed_headers(bot.signing_secret, body)) as response:
        assert response.status == 200
        return await response.text()


async def submit(session: aiohttp.ClientSession, bot: RunningBot, **fields: Any) -> dict[str, Any]:
    payload = view_submission_payload(
        user_id="U0ALICE",
        callback_id=REQUEST_FORM,
        private_metadata=json.dumps({"channel": CHANNEL}),
        values=values(**fields),
    )
    text = await post(session, bot, payload)
    return json.loads(text) if text.strip() else {}


async def test_the_bare_command_and_the_shortcut_open_the_form() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        form = slash_command_form("remove-tdo", response_url=slack.new_response_url(), channel_id=CHANNEL)
        assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
        [opened] = await slack.wait_for_api("views.open")
        view = json.loads(opened.body["view"]) if isinstance(opened.body["view"], str) else opened.body["view"]
        assert view["callback_id"] == REQUEST_FORM and opened.body["trigger_id"]
        action = next(b for b in view["blocks"] if b.get("block_id") == "action")
        assert action["element"]["initial_option"]["value"] == "remove-tdo"
        assert json.loads(view["private_metadata"])["channel"] == CHANNEL
        await post(session, bot, shortcut_payload(user_id="U0ALICE", callback_id=REQUEST_SHORTCUT))
        await slack.wait_for_api("views.open", 2)
        assert len(json.dumps(view)) < 25_000  # far inside Slack's limits for a view


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"reason": " "}, "reason", "Say why"),
        ({"ticket": "see jira"}, "ticket", "ticket number"),
        ({"action": "remove-tdo", "options": ("force",)}, "options", "rotations only"),
        ({"domain": "fabrikam.test"}, "domain", "configured domains"),
        ({"action": "emergency-rotate"}, "action", "Choose what to do"),
        ({"channel": ""}, "channel", "no approvals channel"),
    ],
)
async def test_a_submission_with_mistakes_gets_them_under_their_fields_and_asks_nothing(
    fields: dict[str, Any], where: str, says: str
) -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        payload = view_submission_payload(
            user_id="U0ALICE", callback_id=REQUEST_FORM, private_metadata="{}", values=values(**fields)
        )
        answer = json.loads(await post(session, bot, payload))
        assert answer["response_action"] == "errors" and says in answer["errors"][where]
        assert await world.changes.queries.pending_or_recent() == []


async def test_a_valid_submission_asks_as_the_typed_command_does_with_the_ticket() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        assert await submit(session, bot, ticket="CHG-1234", options=("twice",)) == {}  # the form closes
        [card] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == CHANNEL)
        [request] = await world.changes.queries.pending_or_recent()
        assert request.reason == "[CHG-1234] quarterly rotation" and request.twice
        assert request.requester == "U0ALICE" and request.origin == f"T0STANDIN/A0KERBOT/{CHANNEL}"
        assert "Double rotation" in json.dumps(card.body)


async def test_a_pre_flight_refusal_shows_on_the_form() -> None:
    world = one_domain(on_prem_state("contoso.test", with_tdo=False))
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        answer = await submit(session, bot, action="remove-tdo")
        assert answer["response_action"] == "errors" and "no trusted domain object" in answer["errors"]["action"]
        assert await world.changes.queries.pending_or_recent() == []


class SlowDirectory(FakeDirectory):
    def __init__(self, state: OnPremState) -> None:
        super().__init__(state)
        self.gate = asyncio.Event()

    async def read_kerberos_objects(self) -> OnPremState:
        await self.gate.wait()
        return await super().read_kerberos_objects()


async def test_a_refusal_after_slacks_3_seconds_reaches_the_requester_by_direct_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(form_handlers, "ANSWER_ON_THE_FORM_WITHIN", 0.1)
    world = one_domain(on_prem_state("contoso.test", with_tdo=False))
    slow = SlowDirectory(world.directories["contoso.test"].state)
    world.changes.context.directories["contoso.test"] = slow  # the same domain, slow DCs
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        assert await submit(session, bot, action="remove-tdo") == {}  # closed before the pre-flight answered
        slow.gate.set()
        [dm] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == "D0ALICE")
        assert "no trusted domain object" in json.dumps(dm.body)
