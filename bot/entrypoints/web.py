"""HTTP mode: Slack posts commands and interactivity to ``/slack/events``; health and metrics are
served on a listener of their own (default 127.0.0.1), never beside the Slack endpoint.

The Slack listener is the one exposed to the internet: it answers ``POST /slack/events``, after the
gate (signature, then shape) and the replay check, and ``GET /auth/callback``, where approvers'
browsers come back from the Entra sign-in (``handlers.sign_in_page``). ``/healthz``, ``/readyz`` and ``/metrics``
would tell anyone the bind accounts, DC URLs and failure reasons, and every ``/readyz`` would bind
to every DC (towards an AD lockout with a wrong password): on the health listener ``/readyz`` names
the failed checks only and answers from a cache at most ``READY_CACHE_SECONDS`` old.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.domain.errors import KerberosBotError
from bot.domain.ports import ReplayGuard
from bot.observability.logs import new_request_id
from bot.observability.metrics import Metrics
from handlers.payloads import Refusal, gate

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
READY_CACHE_SECONDS = 10.0

Readiness = Callable[[], Awaitable[dict[str, str]]]  # name of each failed check -> why


def build_web_app(
    bolt: AsyncApp,
    *,
    signing_secret: str,
    replay_guard: ReplayGuard | None = None,
    routes: Sequence[web.RouteDef] = (),
    metrics: Metrics | None = None,
) -> web.Application:
    """The Slack listener: ``POST /slack/events``, and ``routes`` (the approvers' sign-in callback)."""
    ack_seconds = (metrics or Metrics.create()).ack_seconds
    deliveries = EventDeliveries(replay_guard)

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        new_request_id()
        # the raw bytes are verified, then their shape checked, before Bolt parses anything
        raw_body = await request.read()
        passed = gate(signing_secret, raw_body, request.headers)
        if isinstance(passed, Refusal):
            log.warning("refused a request to %s: HTTP %d, %s", EVENTS_PATH, passed.status, passed.reason)
            return web.json_response({"ok": False, "error": passed.reason}, status=passed.status)
        if replay_guard is not None and not await _first_time(replay_guard, request):
            log.warning("refused a replayed request to %s (same timestamp and signature)", EVENTS_PATH)
            return web.json_response({"ok": False, "error": "replayed request"}, status=401)
        event_id = passed.body.get("event_id") if passed.body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not await deliveries.first(event_id):
            # Slack delivers an event again when it had no answer within 3 s (X-Slack-Retry-Num): it was handled
            log.info(
                "an event delivered again (retry %s) was acknowledged, not handled twice",
                request.headers.get("X-Slack-Retry-Num", "?"),
            )
            return web.Response(status=200)
        bolt_request = bolt_request_of(passed.body, raw_body, request.headers, request.query_string)
        kind = "interaction" if bolt_request.raw_body.startswith("payload=") else "command"
        bolt_response = await bolt.async_dispatch(bolt_request)
        ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return await to_aiohttp_response(bolt_response)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_routes(routes)
    return app


def bolt_request_of(
    body: dict[str, Any], raw_body: bytes, headers: Mapping[str, str], query_string: str = ""
) -> AsyncBoltRequest:
    """Bolt's request over the gate's parse of the body (``handlers.payloads.parse_slack_body``), not its own:
    Bolt dispatches on what the gate checked, and the body is not parsed twice. Bolt parses a ``str`` body
    in HTTP mode and takes a ``dict`` only in Socket Mode, so the request is built as Socket Mode's and
    then given the raw body and HTTP mode it has."""
    bolt_request = AsyncBoltRequest(
        body=body,
        query=query_string,
        headers=headers,  # type: ignore[arg-type]  # Bolt copies a mapping of header names to values
        mode="socket_mode",
    )
    bolt_request.raw_body = raw_body.decode("utf-8")  # the gate has decoded it already
    bolt_request.mode = "http"
    return bolt_request


class EventDeliveries:
    """The Events API deliveries already handled, by event id: across replicas through the replay guard's
    store, else in this process (the last ``keep`` ids)."""

    def __init__(self, guard: ReplayGuard | None, keep: int = 10_000) -> None:
        self._guard = guard
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._keep = keep

    async def first(self, event_id: str) -> bool:
        if self._guard is not None:
            try:
                return await self._guard.first_time("event", event_id)
            except KerberosBotError as exc:
                log.warning("could not check for a repeated event (%s); handling it", exc.user_message)
                return True
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._keep:
            self._seen.popitem(last=False)
        return True


async def _first_time(guard: ReplayGuard, request: web.Request) -> bool:
    try:
        return await guard.first_time(
            request.headers.get("X-Slack-Request-Timestamp", ""), request.headers.get("X-Slack-Signature", "")
        )
    except KerberosBotError as exc:
        # Redis is down: nothing can be requested or approved then, and a replayed read is harmless;
        # the request is let through (and it says so in the log) rather than refusing every command
        log.warning("could not check for a replay (%s); letting the request through", exc.user_message)
        return True


def build_health_app(
    readiness: Readiness | None = None, *, cache_seconds: float = READY_CACHE_SECONDS, metrics: Metrics | None = None
) -> web.Application:
    """The health listener: ``/healthz``, ``/readyz`` (failed check names only, cached) and ``/metrics``."""
    cached: tuple[float, list[str]] | None = None
    lock = asyncio.Lock()

    async def failed_checks() -> list[str]:
        nonlocal cached
        async with lock:  # concurrent GETs share one round of checks
            if cached is None or time.monotonic() - cached[0] >= cache_seconds:
                failed = await readiness() if readiness is not None else {}
                for name, why in failed.items():
                    log.warning("not ready: %s: %s", name, why)  # the reasons go to the log, not to the caller
                cached = (time.monotonic(), sorted(failed))
            return cached[1]

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        failed = await failed_checks()
        if failed:
            return web.json_response({"status": "not ready", "failed": failed}, status=503)
        return web.json_response({"status": "ready"})

    served = metrics or Metrics.create()

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=served.exposition(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket bound now, so its port is known (and kept) before the app that serves it exists."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_site(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    sock: socket.socket | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` (on ``sock`` when given); returns the runner (for cleanup) and the port really
    bound (``port=0``: a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site: web.BaseSite = (
        web.SockSite(runner, sock, ssl_context=ssl_context)
        if sock is not None
        else web.TCPSite(runner, host, port, ssl_context=ssl_context)
    )
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)
