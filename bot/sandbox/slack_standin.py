"""A local stand-in for Slack: the Web API the bot calls, the response URLs it posts to,
and a client that sends signed slash commands to the bot the way Slack does.

Used by the tests, the demo and the benchmarks; nothing here reaches Slack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.web import start_site


@dataclass
class RecordedCall:
    kind: str  # "api" or "response_url"
    name: str  # Web API method, or the response URL's id
    body: dict[str, Any]
    headers: Mapping[str, str]
    at: float = field(default_factory=time.monotonic)


class SlackStandIn:
    """Records every Web API call and response-URL post; answers like Slack does."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, bot_token: str = "xoxb-standin") -> None:
        self._host = host
        self._port = port
        self.bot_token = bot_token
        self.calls: list[RecordedCall] = []
        self.user_groups: dict[str, list[str]] = {}  # usergroups.users.list
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._ts = itertools.count(1)
        self.url = ""

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def new_response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads some methods with GET
        app.router.add_post("/response/{rid}", self._response)
        self._runner, port = await start_site(app, self._host, self._port)
        self.url = f"http://{self._host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _record(self, call: RecordedCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.text()
        if request.content_type == "application/json":
            body: dict[str, Any] = json.loads(raw or "{}")
        else:
            body = dict(parse_qsl(raw))
        body.update(request.query)
        await self._record(RecordedCall("api", method, body, dict(request.headers)))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(body.get("token", ""))
        if token != self.bot_token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return web.json_response(
                {
                    "ok": True,
                    "url": "https://standin.slack.test/",
                    "team": "Stand-in",
                    "user": "kerberos-bot",
                    "team_id": "T0STANDIN",
                    "user_id": "U0KERBOT",
                    "bot_id": "B0KERBOT",
                    "is_enterprise_install": False,
                }
            )
        if method == "usergroups.users.list":
            group = str(body.get("usergroup", ""))
            if group not in self.user_groups:
                return web.json_response({"ok": False, "error": "no_such_subteam"})
            return web.json_response({"ok": True, "users": self.user_groups[group]})
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return web.json_response({"ok": True, "channel": body.get("channel"), "ts": ts, "message_ts": ts})
        return web.json_response({"ok": True})

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._record(RecordedCall("response_url", request.match_info["rid"], body, dict(request.headers)))
        return web.Response(text="ok")

    def responses(self, response_url: str | None = None) -> list[dict[str, Any]]:
        rid = response_url.rsplit("/", 1)[-1] if response_url else None
        return [c.body for c in self.calls if c.kind == "response_url" and (rid is None or c.name == rid)]

    def api_calls(self, method: str | None = None) -> list[RecordedCall]:
        return [c for c in self.calls if c.kind == "api" and (method is None or c.name == method)]

    async def wait_for_responses(
        self, response_url: str, count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.responses(response_url)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.responses(response_url)


def slash_command_form(
    text: str,
    *,
    response_url: str,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0PLATFORM",
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
            "channel_name": "platform",
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0KERBOT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}",
        }
    )


def interaction_form(payload: dict[str, Any]) -> str:
    """The form body Slack posts for interactivity (block_actions, view_submission)."""
    return urlencode({"payload": json.dumps(payload)})


def block_actions_payload(
    *, user_id: str, action_id: str, value: str, channel_id: str, message_ts: str, team_id: str = "T0STANDIN"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "standin"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0KERBOT",
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}",
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


def view_submission_payload(
    *, user_id: str, callback_id: str, private_metadata: str, values: dict[str, Any], team_id: str = "T0STANDIN"
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "standin"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0KERBOT",
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
