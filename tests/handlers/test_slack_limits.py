"""Slack's limits, through the real bot and the Web API stand-in: posts refused with 429 and
Retry-After, a card update answered 503, and a response URL refused with 429 are all retried; no reply,
card or card update is lost."""

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

from bot.adapters.slack.web import slack_web_client
from bot.bootstrap.slack import SlackAccess, WorkerPlan, assemble_bot
from bot.bootstrap.slack import running_bot as running
from bot.services.container import BotServices
from handlers.responder import ResponseUrlPoster, response_origins
from handlers.views.cards import APPROVE_ACTION
from tests.support.botserver import running_bot
from tests.support.fakes import NOW, on_prem_state
from tests.support.worlds import one_domain

CHANNEL = "C0PLATFORM"


async def test_rate_limited_and_failing_slack_calls_are_retried_and_nothing_is_lost() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    changes = world.changes
    services = BotServices(status=world.status, changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        slack.fail_next("chat.postMessage", retry_after=0.2, count=2)  # the card: refused twice
        slack.fail_next("response_url", retry_after=0.1)  # the reply to the requester: refused once
        url = slack.new_response_url()
        form = slash_command_form("rotate contoso.test -- quarterly", response_url=url, channel_id=CHANNEL)
        ack = await send_slash_command(session, bot.endpoint, bot.signing_secret, form)
        assert ack.status == 200
        [reply] = await slack.wait_for_responses(url, 1)
        assert "Approvals" in json.dumps(reply) or "request" in json.dumps(reply).lower()
        cards = await slack.wait_for_api("chat.postMessage", 3, where=lambda c: c.body.get("channel") == CHANNEL)
        assert len(cards) == 3  # two refused, the third posted
        assert [c for c in slack.calls if c.kind == "refused_response"]
        [request] = await changes.queries.pending_or_recent()
        stored = await changes.queries.get(request.id)
        assert stored is not None and stored.card  # the card's place was learned from the posted one

        slack.fail_next("chat.update", status=503, error="service_unavailable", retry_after=None)
        slack.fail_next("chat.update", retry_after=0.1)
        payload = block_actions_payload(
            user_id="U0BOB",
            action_id=APPROVE_ACTION,
            value=changes.decisions.button_value(request),
            channel_id=CHANNEL,
            message_ts=str(stored.card),
        )
        click = interaction_form(payload)
        async with session.post(bot.endpoint, data=click, headers=signed_headers(bot.signing_secret, click)) as r:
            assert r.status == 200
        updates = await slack.wait_for_api("chat.update", 3)
        assert "Approved" in json.dumps(updates[-1].body)


async def test_a_reply_goes_only_to_slacks_response_urls_or_the_configured_slack_base() -> None:
    async with SlackStandIn() as slack:
        url = slack.new_response_url()
        outside = ResponseUrlPoster()  # Slack's own: hooks.slack.com only
        await outside.post(url, b'{"text": "to an address someone chose"}')
        await outside.close()
        assert slack.responses() == []  # nothing was sent
        configured = ResponseUrlPoster(origins=response_origins(slack.api_url))  # the stand-in is the Slack base
        await configured.post(url, b'{"text": "hello"}')
        await configured.close()
        assert slack.responses(url) == [{"text": "hello"}]
    assert response_origins("https://slack.com/api/") == ("https://hooks.slack.com",)


async def test_the_running_bot_keeps_one_connection_to_slack_instead_of_one_per_call() -> None:
    """slack_sdk opens a session (a TCP connection, at Slack a TLS handshake too) per call unless given one:
    while the bot runs, its calls share one, kept alive, and it is closed with the bot."""
    async with SlackStandIn() as slack:
        one_per_call = slack_web_client(slack.bot_token, slack.api_url)
        for n in range(5):
            await one_per_call.chat_postMessage(channel=f"C0{n}", text="hello")
        assert len(slack.api_peers) == 5

        slack.api_peers.clear()
        world = one_domain(on_prem_state("contoso.test"))
        bot = assemble_bot(
            BotServices(status=world.status, changes=world.changes),
            SlackAccess(slack.bot_token, "secret", slack.api_url),
            workers=WorkerPlan(changes=False),
        )
        async with running(bot):
            for n in range(5):
                await bot.client.chat_postMessage(channel=f"C0{n}", text="hello")
            assert len(slack.api_peers) == 1
            session = bot.client.session
            assert session is not None and not session.closed
        assert session.closed and bot.client.session is None
