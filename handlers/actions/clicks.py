"""Who clicked which button where, and which request its value names (checked, never trusted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.errors import UsageError
from bot.services.changes.engine import ChangeEngine
from handlers.views.cards import TamperedButton, button_payload


@dataclass(frozen=True)
class Click:
    value: str  # the button's value, checked for its shape
    user: str
    channel: str
    origin: str  # "<team>/<app>/<channel>": the store refuses a click from elsewhere than the request


def clicked(body: dict[str, Any]) -> Click:
    """Who clicked which button where; the gate in front of Bolt checked the payload's shape."""
    action = body["actions"][0]
    channel = body.get("channel")
    if not isinstance(channel, dict) or not channel.get("id"):
        raise UsageError("This button works only on a request's card in its channel; nothing was changed.")
    team = body.get("team")
    team_id = str(team.get("id", "")) if isinstance(team, dict) else ""
    origin = f"{team_id}/{body.get('api_app_id', '')}/{channel['id']}"
    return Click(button_payload(action.get("value")), str(body["user"]["id"]), str(channel["id"]), origin)


def request_id_of(changes: ChangeEngine, value: str) -> str:
    request_id = changes.decisions.request_id_of(value)
    if request_id is None:
        raise TamperedButton()
    return request_id
