"""People in a Slack channel, through signed requests to the running bot: they type /kerberos commands,
click a request card's buttons and send interactions, as the handler suites need."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from kerberos_sandbox.slack_requests import (
    block_actions_payload,
    interaction_form,
    send_slash_command,
    signed_headers,
    slash_command_form,
)
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.services.changes.engine import ChangeEngine
from handlers.views.cards import APPROVE_ACTION
from tests.support.botserver import RunningBot

CHANNEL = "C0PLATFORM"


@dataclass
class Channel:
    slack: SlackStandIn
    bot: RunningBot
    session: aiohttp.ClientSession
    changes: ChangeEngine | None = None
    channel: str = CHANNEL

    async def say(self, text: str, user: str = "U0ALICE", channel: str | None = None) -> str:
        """Type ``/kerberos <text>``; the acknowledgement, or the reply that follows it, as JSON text."""
        url = self.slack.new_response_url()
        form = slash_command_form(text, response_url=url, user_id=user, channel_id=channel or self.channel)
        ack = await send_slash_command(self.session, self.bot.endpoint, self.bot.signing_secret, form)
        assert ack.status == 200
        if ack.body and "Checking" not in ack.body:
            return ack.body
        return json.dumps(await self.slack.wait_for_responses(url, 1))

    async def interact(self, payload: dict[str, Any]) -> str:
        """A signed interaction (a click, a submission); the body of its acknowledgement."""
        body = interaction_form(payload)
        headers = signed_headers(self.bot.signing_secret, body)
        async with self.session.post(self.bot.endpoint, data=body, headers=headers) as response:
            assert response.status == 200
            return await response.text()

    async def click(
        self, request_id: str, user: str, action_id: str = APPROVE_ACTION, channel: str | None = None
    ) -> str:
        """Click a button on the request's card, as it carries the bot's value."""
        assert self.changes is not None
        request = await self.changes.queries.get(request_id)
        assert request is not None
        payload = block_actions_payload(
            user_id=user,
            action_id=action_id,
            value=self.changes.decisions.button_value(request),
            channel_id=channel or self.channel,
            message_ts=str(request.card),
        )
        return await self.interact(payload)
