"""A domain that names its approvals channel: the card goes there whatever channel the request was
typed in (a private channel shared with a colluder included), only clicks there count, and the channel
it was asked in gets a short note with the card's link."""

from __future__ import annotations

import json
from datetime import timedelta

import aiohttp
from kerberos_sandbox.slack_requests import (
    block_actions_payload,
    interaction_form,
    send_slash_command,
    signed_headers,
    slash_command_form,
)
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.approvals import Action, ActionPolicy, RequestState
from bot.services.container import BotServices
from bot.services.status import StatusService
from handlers.views.cards import APPROVE_ACTION
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state

APPROVALS = "C0APPROVALS"
PRIVATE = "G0COLLUDERS"


def services() -> BotServices:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    changes = engine_on_fakes(
        store=FakeApprovalStore(),
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0MALLORY"})}),
        policies={a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"})) for a in Action},
        clock=lambda: NOW,
        approval_channels={"contoso.test": APPROVALS},
    )
    return BotServices(status=StatusService(directories, module, FakeEntra(), clock=lambda: NOW), changes=changes)


async def test_the_card_goes_to_the_domains_approvals_channel_and_only_clicks_there_count() -> None:
    bot_services = services()
    changes = bot_services.changes
    assert changes is not None
    async with SlackStandIn() as slack, running_bot(bot_services, slack) as bot, aiohttp.ClientSession() as session:
        url = slack.new_response_url()
        form = slash_command_form("rotate contoso.test -- quarterly", response_url=url, channel_id=PRIVATE)
        assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
        [note] = await slack.wait_for_responses(url, 1)
        assert note.get("response_type") == "in_channel"
        text = json.dumps(note)
        assert f"<#{APPROVALS}>" in text and "https://standin.slack.test/archives/C0APPROVALS/p" in text
        [card] = await slack.wait_for_api("chat.postMessage", where=lambda c: not c.body["channel"].startswith("D"))
        assert card.body["channel"] == APPROVALS
        assert not [c for c in slack.api_calls("chat.postMessage") if c.body.get("channel") == PRIVATE]
        [request] = await changes.queries.pending_or_recent()
        assert request.channel == APPROVALS and request.origin == f"T0STANDIN/A0KERBOT/{APPROVALS}"

        async def click(user: str, channel: str) -> None:
            payload = block_actions_payload(
                user_id=user,
                action_id=APPROVE_ACTION,
                value=changes.decisions.button_value(request),
                channel_id=channel,
                message_ts=str((await changes.queries.get(request.id)).card),  # type: ignore[union-attr]
            )
            body = interaction_form(payload)
            async with session.post(bot.endpoint, data=body, headers=signed_headers(bot.signing_secret, body)) as r:
                assert r.status == 200

        await click("U0MALLORY", PRIVATE)  # a copy of the buttons in the private channel counts for nothing
        await slack.wait_for_api("chat.postEphemeral", where=lambda c: "another channel" in str(c.body.get("text")))
        assert (await changes.queries.get(request.id)).state == RequestState.PENDING  # type: ignore[union-attr]
        await click("U0BOB", APPROVALS)
        assert (await changes.queries.get(request.id)).state == RequestState.APPROVED  # type: ignore[union-attr]


async def test_asked_in_the_approvals_channel_itself_the_reply_is_the_usual_one() -> None:
    bot_services = services()
    async with SlackStandIn() as slack, running_bot(bot_services, slack) as bot, aiohttp.ClientSession() as session:
        url = slack.new_response_url()
        form = slash_command_form("rotate contoso.test -- quarterly", response_url=url, channel_id=APPROVALS)
        assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
        [reply] = await slack.wait_for_responses(url, 1)
        assert "is posted for approval" in json.dumps(reply) and reply.get("response_type") != "in_channel"
