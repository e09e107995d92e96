"""What Slack sends to an app, built as Slack builds it: slash command forms, interaction payloads, Events API
bodies, their signature headers, and sending a command to the bot's endpoint as Slack would."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier


def slash_command_form(
    text: str,
    *,
    response_url: str,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0PLATFORM",
    channel_name: str = "platform",
    team_id: str = "T0STANDIN",
    command: str = "/kerberos",
) -> str:
    """The form body Slack posts for a slash command."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": "standin",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0KERBOT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
    )


def _sent_by(user_id: str, team_id: str) -> dict[str, Any]:
    """Who an interaction comes from, in every payload Slack sends: the workspace, the person, the app."""
    return {
        "team": {"id": team_id, "domain": "standin"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0KERBOT",
    }


def _trigger_id() -> str:
    """A trigger (for opening a dialog), unique per interaction."""
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}"


def interaction_form(payload: dict[str, Any]) -> str:
    """The form body Slack posts for interactivity (block_actions, view_submission)."""
    return urlencode({"payload": json.dumps(payload)})


def block_actions_payload(
    *, user_id: str, action_id: str, value: str, channel_id: str, message_ts: str, team_id: str = "T0STANDIN"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        **_sent_by(user_id, team_id),
        "trigger_id": _trigger_id(),
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False},
        "channel": {"id": channel_id, "name": "platform"},
        "message": {"type": "message", "ts": message_ts, "text": "request"},
        "response_url": f"https://hooks.slack.test/actions/{uuid.uuid4().hex}",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "request",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }


def event_body(event: dict[str, Any], team_id: str = "T0STANDIN") -> str:
    """An Events API request's JSON body (``event_callback``), as Slack posts it."""
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "api_app_id": "A0KERBOT",
            "type": "event_callback",
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
            "event": event,
        }
    )


def shortcut_payload(*, user_id: str, callback_id: str, team_id: str = "T0STANDIN") -> dict[str, Any]:
    """A global shortcut, as Slack posts it (interactivity)."""
    return {
        "type": "shortcut",
        "token": "deprecated-verification-token",
        "action_ts": f"{time.time():.6f}",
        **_sent_by(user_id, team_id),
        "callback_id": callback_id,
        "trigger_id": _trigger_id(),
    }


def view_submission_payload(
    *, user_id: str, callback_id: str, private_metadata: str, values: dict[str, Any], team_id: str = "T0STANDIN"
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        **_sent_by(user_id, team_id),
        "view": {
            "id": "V0DENY",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "hash": "1",
            "team_id": team_id,
        },
    }


def signed_headers(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None  # only None when no secret was given
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


@dataclass(frozen=True)
class AckResult:
    status: int
    body: str
    seconds: float

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body) if self.body.startswith("{") else {}
        return parsed


async def send_slash_command(
    session: aiohttp.ClientSession,
    endpoint: str,
    signing_secret: str,
    form: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> AckResult:
    """POST a signed slash command the way Slack does; returns the acknowledgement."""
    send_headers = dict(headers) if headers is not None else signed_headers(signing_secret, form)
    started = time.perf_counter()
    async with session.post(endpoint, data=form.encode(), headers=send_headers) as resp:
        text = await resp.text()
    return AckResult(resp.status, text, time.perf_counter() - started)
