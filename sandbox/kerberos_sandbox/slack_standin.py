"""A local stand-in for Slack: the Web API the bot calls, the response URLs it posts to, and Socket Mode's
websocket (what Slack sends to the bot, signed, is built in ``slack_requests``).

Used by the tests, the demo and the benchmarks; nothing here reaches Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bot.entrypoints.web import start_site

ADMIN_HEADER = "X-Stand-In-Key"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedCall:
    kind: str  # "api" or "response_url"
    name: str  # Web API method, or the response URL's id
    body: dict[str, Any]
    headers: Mapping[str, str]
    at: float = field(default_factory=time.monotonic)
    ts: str = ""  # chat.postMessage, chat.update: the message's timestamp the stand-in answered with


class SlackStandIn:
    """Records every Web API call and response-URL post; answers like Slack does."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, bot_token: str = "xoxb-standin", app_token: str = "xapp-standin"
    ) -> None:
        self._host = host
        self._port = port
        self.bot_token = bot_token
        self.app_token = app_token
        self._socket: web.WebSocketResponse | None = None
        self._socket_connected = asyncio.Event()
        self.socket_received: list[dict[str, Any]] = []  # what the app sent back (acks)
        self.calls: list[RecordedCall] = []
        self.user_groups: dict[str, list[str]] = {}  # usergroups.users.list
        self.user_emails: dict[str, str | None] = {}  # users.info: profile.email (None: hidden)
        self.failing: dict[str, tuple[int, dict[str, Any]]] = {}  # method -> the HTTP status and body it answers
        self.next_failures: dict[str, list[tuple[int, str, float | None]]] = {}  # method -> (status, error, retry)
        self.admin_key = secrets.token_urlsafe(16)  # X-Stand-In-Key of the /_standin/* endpoints
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.api_peers: set[tuple[str, int]] = set()  # (host, port) of every connection Web API calls came on
        self._ts = itertools.count(1)
        self.url = ""

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def fail(self, method: str, *, status: int = 200, error: str = "fatal_error") -> None:
        """Make ``method`` answer with ``status`` and ``{"ok": false, "error": error}`` until ``heal``."""
        self.failing[method] = (status, {"ok": False, "error": error})

    def heal(self, method: str) -> None:
        self.failing.pop(method, None)
        self.next_failures.pop(method, None)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        error: str = "ratelimited",
        retry_after: float | None = 1.0,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls of ``method`` answer as Slack does when it refuses one: by default
        its rate limit (HTTP 429, ``Retry-After``, ``{"ok": false, "error": "ratelimited"}``).
        ``"response_url"`` names the slash commands' response URLs."""
        self.next_failures.setdefault(method, []).extend([(status, error, retry_after)] * count)

    def counts(self) -> dict[str, int]:
        """Web API calls received per method (refused ones included)."""
        counted: dict[str, int] = {}
        for call in self.api_calls():
            counted[call.name] = counted.get(call.name, 0) + 1
        return counted

    def new_response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._admin_only])
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads some methods with GET
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_get("/socket-mode", self._socket_mode)
        app.router.add_get("/_standin/calls", self._admin_calls)
        app.router.add_get("/_standin/counts", self._admin_counts)
        app.router.add_post("/_standin/faults", self._admin_faults)
        app.router.add_delete("/_standin/faults", self._admin_clear_faults)
        app.router.add_put("/_standin/user-groups", self._admin_user_groups)
        app.router.add_put("/_standin/user-emails", self._admin_user_emails)
        self._runner, port = await start_site(app, self._host, self._port)
        self.url = f"http://{self._host}:{port}"

    async def stop(self) -> None:
        await self.stop_socket()
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
        call = RecordedCall("api", method, body, dict(request.headers))
        if (peer := request.transport.get_extra_info("peername") if request.transport else None) is not None:
            self.api_peers.add(tuple(peer)[:2])  # one per TCP connection the bot opened
        await self._record(call)
        if method in self.failing:
            status, answer = self.failing[method]
            return web.json_response(answer, status=status)
        if self.next_failures.get(method):
            status, error, retry_after = self.next_failures[method].pop(0)
            response = web.json_response({"ok": False, "error": error}, status=status)
            if retry_after is not None:
                response.headers["Retry-After"] = f"{retry_after:g}"
            return response
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(body.get("token", ""))
        if method == "apps.connections.open":
            if token != self.app_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": self.url.replace("http://", "ws://") + "/socket-mode"})
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
        if method == "bots.info":
            if str(body.get("bot", "")) != "B0KERBOT":
                return web.json_response({"ok": False, "error": "bot_not_found"})
            bot = {"id": "B0KERBOT", "app_id": "A0KERBOT", "name": "kerberos-bot", "deleted": False}
            return web.json_response({"ok": True, "bot": bot})
        if method == "usergroups.users.list":
            group = str(body.get("usergroup", ""))
            if group not in self.user_groups:
                return web.json_response({"ok": False, "error": "no_such_subteam"})
            return web.json_response({"ok": True, "users": self.user_groups[group]})
        if method == "users.info":
            user = str(body.get("user", ""))
            if user not in self.user_emails:
                return web.json_response({"ok": False, "error": "user_not_found"})
            profile: dict[str, Any] = {"real_name": user.removeprefix("U0").title()}
            if self.user_emails[user]:
                profile["email"] = self.user_emails[user]
            return web.json_response({"ok": True, "user": {"id": user, "name": user.lower(), "profile": profile}})
        if method == "conversations.open":  # the app's direct message with a user
            users = str(body.get("users", ""))
            if not users or "," in users:
                return web.json_response({"ok": False, "error": "users_list_not_supplied"})
            return web.json_response({"ok": True, "channel": {"id": "D" + users.removeprefix("U").removeprefix("W")}})
        if method == "chat.getPermalink":
            channel, ts = str(body.get("channel", "")), str(body.get("message_ts", ""))
            link = f"https://standin.slack.test/archives/{channel}/p{ts.replace('.', '')}"
            return web.json_response({"ok": True, "channel": channel, "permalink": link})
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            call.ts = ts
            return web.json_response({"ok": True, "channel": body.get("channel"), "ts": ts, "message_ts": ts})
        return web.json_response({"ok": True})

    # -- admin: for a sandbox run on its own (kerberos-bot sandbox up); header X-Stand-In-Key -----------
    @web.middleware
    async def _admin_only(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_standin/") and not secrets.compare_digest(
            request.headers.get(ADMIN_HEADER, ""), self.admin_key
        ):
            return web.json_response({"error": f"missing or wrong {ADMIN_HEADER}"}, status=403)
        return await handler(request)

    async def _admin_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        calls = [
            {"kind": c.kind, "name": c.name, "body": c.body}
            for c in self.calls
            if method is None or (c.kind == "api" and c.name == method)
        ]
        return web.json_response({"calls": calls})

    async def _admin_counts(self, request: web.Request) -> web.Response:
        return web.json_response(self.counts())

    async def _admin_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            retry = body.get("retry_after", 1.0)
            self.fail_next(
                str(body["method"]),
                status=int(body.get("status", 429)),
                error=str(body.get("error", "ratelimited")),
                retry_after=None if retry is None else float(retry),
                count=int(body.get("count", 1)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response(
                {"error": 'give {"method": ..., "status": 429, "error": "ratelimited", "retry_after": 1, "count": 1}'},
                status=400,
            )
        return web.json_response({"ok": True})

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.failing.clear()
        self.next_failures.clear()
        return web.json_response({"ok": True})

    async def _admin_user_groups(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
            return web.json_response({"error": 'give {"<group id>": ["<user id>", ...]}'}, status=400)
        self.user_groups = {str(g): [str(u) for u in users] for g, users in body.items()}
        return web.json_response({"ok": True})

    async def _admin_user_emails(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            return web.json_response({"error": 'give {"<user id>": "<e-mail>" or null}'}, status=400)
        self.user_emails = {str(u): (str(e) if e else None) for u, e in body.items()}
        return web.json_response({"ok": True})

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, deliver envelopes, record what the app sends back."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._socket = ws
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "standin"},
                "connection_info": {"app_id": "A0KERBOT"},
            }
        )
        self._socket_connected.set()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self._record(RecordedCall("socket", "ack", json.loads(message.data), {}))
                self.socket_received.append(json.loads(message.data))
        return ws

    async def send_envelope(self, kind: str, payload: dict[str, Any], timeout: float = 10.0) -> str:
        """Deliver an event to the connected app as Slack does in Socket Mode; returns the envelope id."""
        await asyncio.wait_for(self._socket_connected.wait(), timeout)
        assert self._socket is not None
        envelope_id = uuid.uuid4().hex
        await self._socket.send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return envelope_id

    async def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        async def acked() -> dict[str, Any]:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: any(m.get("envelope_id") == envelope_id for m in self.socket_received)
                )
            return next(m for m in self.socket_received if m.get("envelope_id") == envelope_id)

        return await asyncio.wait_for(acked(), timeout)

    async def stop_socket(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.next_failures.get("response_url"):  # refused: recorded apart, so it is no reply
            status, error, retry_after = self.next_failures["response_url"].pop(0)
            await self._record(RecordedCall("refused_response", request.match_info["rid"], body, dict(request.headers)))
            response = web.Response(text=error, status=status)
            if retry_after is not None:
                response.headers["Retry-After"] = f"{retry_after:g}"
            return response
        await self._record(RecordedCall("response_url", request.match_info["rid"], body, dict(request.headers)))
        return web.Response(text="ok")

    def responses(self, response_url: str | None = None) -> list[dict[str, Any]]:
        rid = response_url.rsplit("/", 1)[-1] if response_url else None
        return [c.body for c in self.calls if c.kind == "response_url" and (rid is None or c.name == rid)]

    def channel_posts(self) -> list[RecordedCall]:
        """The bot's chat.postMessage calls to channels (its direct messages, to D… conversations, left out)."""
        return [c for c in self.api_calls("chat.postMessage") if not str(c.body.get("channel", "")).startswith("D")]

    def direct_messages(self, user: str) -> list[RecordedCall]:
        """The bot's direct messages to ``user`` (the stand-in's conversations.open gives D + the user's id)."""
        im = "D" + user.removeprefix("U").removeprefix("W")
        return [c for c in self.api_calls("chat.postMessage") if c.body.get("channel") == im]

    def api_calls(self, method: str | None = None) -> list[RecordedCall]:
        return [c for c in self.calls if c.kind == "api" and (method is None or c.name == method)]

    async def wait_for_api(
        self, method: str, count: int = 1, timeout: float = 30.0, *, where: Callable[[RecordedCall], bool] | None = None
    ) -> list[RecordedCall]:
        """The calls of ``method`` (those ``where`` accepts) once there are ``count`` of them."""

        def found() -> list[RecordedCall]:
            return [c for c in self.api_calls(method) if where is None or where(c)]

        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(found()) >= count)

        await asyncio.wait_for(enough(), timeout)
        return found()

    async def wait_for_response_count(self, count: int, timeout: float = 30.0) -> int:
        """How many response-URL posts arrived, once there are ``count`` (or when ``timeout`` passes)."""

        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.responses()) >= count)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough(), timeout)
        return len(self.responses())

    async def wait_for_responses(
        self, response_url: str, count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.responses(response_url)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.responses(response_url)
