"""Take-over clicks (operator-executes mode): another operator who may run the change takes it from the one
named, from the button on its card."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.logs import set_user
from bot.services.changes.engine import ChangeEngine
from handlers.actions.clicks import clicked, request_id_of
from handlers.boundary import OnceAck, guard
from handlers.notices.operators import taken_over
from handlers.views.cards import TAKE_OVER_ACTION


def register(app: AsyncApp, changes: ChangeEngine) -> None:
    async def take(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = clicked(body)
        set_user(click.user)
        request, previous, handover = await changes.operators.take_over(request_id_of(changes, click.value), click.user)
        told = await taken_over(client, changes, request, previous, handover)
        await client.chat_postEphemeral(channel=click.channel, user=click.user, text=told)

    app.action(TAKE_OVER_ACTION)(guard("take-over click", take))
