"""HTTP mode: Slack posts commands and interactivity to ``/slack/events``."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.logs import new_request_id
from bot.metrics import ACK_SECONDS, exposition
from handlers.payloads import gate

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


Readiness = Callable[[], Awaitable[dict[str, str]]]  # name of each failed check -> why


def build_web_app(bolt: AsyncApp, readiness: Readiness | None = None, *, signing_secret: str) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        new_request_id()
        # the raw bytes are verified, then their shape checked, before Bolt parses anything
        refusal = gate(signing_secret, await request.read(), request.headers)
        if refusal is not None:
            log.warning("refused a request to %s: HTTP %d, %s", EVENTS_PATH, refusal.status, refusal.reason)
            return web.json_response({"ok": False, "error": refusal.reason}, status=refusal.status)
        bolt_request = await to_bolt_request(request)
        kind = "interaction" if bolt_request.raw_body.startswith("payload=") else "command"
        bolt_response = await bolt.async_dispatch(bolt_request)
        ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        failed = await readiness() if readiness is not None else {}
        if failed:
            return web.json_response({"status": "not ready", "failed": failed}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=exposition(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_site(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app``; returns the runner (for cleanup) and the port really bound (``port=0``: a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    bound = runner.addresses[0][1]
    return runner, int(bound)
