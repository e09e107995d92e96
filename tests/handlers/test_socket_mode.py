"""Socket Mode: the same app over a WebSocket from the Slack stand-in, no HTTP endpoint at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from kerberos_sandbox.slack_requests import slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.bootstrap.adapters import slack_client
from bot.services.container import BotServices
from bot.services.status import StatusService
from handlers.app import build_bolt_app
from handlers.responder import ResponseUrlPoster, response_origins
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state


@pytest.fixture
async def connected() -> AsyncIterator[SlackStandIn]:
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test"))}
    services = BotServices(
        status=StatusService(directories, FakeKerberosModule.in_step(directories), FakeEntra(), clock=lambda: NOW)
    )
    async with SlackStandIn() as slack:
        poster = ResponseUrlPoster(origins=response_origins(slack.api_url))
        # Socket Mode has no request signature: Slack authenticates the WebSocket with the app token
        bolt = build_bolt_app(
            signing_secret="unused",
            client=slack_client(slack.bot_token, slack.api_url),
            services=services,
            poster=poster,
        )
        handler = AsyncSocketModeHandler(bolt, slack.app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            yield slack
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            await poster.close()


async def test_slash_command_over_socket_mode_is_acked_then_answered(connected: SlackStandIn) -> None:
    response_url = connected.new_response_url()
    payload = dict(parse_qsl(slash_command_form("status contoso.test", response_url=response_url)))
    envelope = await connected.send_envelope("slash_commands", payload)
    ack = await connected.wait_for_ack(envelope)
    assert "Checking the Kerberos server of contoso.test" in str(ack.get("payload"))
    [reply] = await connected.wait_for_responses(response_url)
    assert "Kerberos status: contoso.test" in str(reply) and reply["response_type"] == "in_channel"


async def test_the_app_token_opens_the_connection(connected: SlackStandIn) -> None:
    [call] = connected.api_calls("apps.connections.open")
    assert call.headers.get("Authorization") == f"Bearer {connected.app_token}"
