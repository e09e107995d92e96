"""Run the real bot HTTP app on a loopback port for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.sandbox.slack_standin import SlackStandIn
from bot.services.container import BotServices
from bot.slack_app import build_bolt_app, slack_client
from bot.web import EVENTS_PATH, build_web_app, start_site
from handlers.responder import ResponseUrlPoster

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


@dataclass(frozen=True)
class RunningBot:
    url: str
    endpoint: str
    signing_secret: str


@asynccontextmanager
async def running_bot(services: BotServices, slack: SlackStandIn) -> AsyncIterator[RunningBot]:
    poster = ResponseUrlPoster()
    bolt = build_bolt_app(
        signing_secret=SIGNING_SECRET,
        client=slack_client(slack.bot_token, slack.api_url),
        services=services,
        poster=poster,
    )
    runner, port = await start_site(build_web_app(bolt, signing_secret=SIGNING_SECRET))
    url = f"http://127.0.0.1:{port}"
    try:
        yield RunningBot(url, url + EVENTS_PATH, SIGNING_SECRET)
    finally:
        await runner.cleanup()
        await poster.close()
