"""Run the real bot HTTP app, wired by the composition root, on a loopback port for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kerberos_sandbox.slack_standin import SlackStandIn

from bot.bootstrap.slack import SlackAccess, WorkerPlan, assemble_bot
from bot.entrypoints.web import EVENTS_PATH, start_site
from bot.services.container import BotServices

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


@dataclass(frozen=True)
class RunningBot:
    url: str
    endpoint: str
    signing_secret: str


@asynccontextmanager
async def running_bot(services: BotServices, slack: SlackStandIn) -> AsyncIterator[RunningBot]:
    """The services' Slack side as production wires it, without workers (the tests run those themselves)."""
    bot = assemble_bot(
        services, SlackAccess(slack.bot_token, SIGNING_SECRET, slack.api_url), workers=WorkerPlan(changes=False)
    )
    runner, port = await start_site(bot.web_app())
    url = f"http://127.0.0.1:{port}"
    try:
        yield RunningBot(url, url + EVENTS_PATH, SIGNING_SECRET)
    finally:
        await runner.cleanup()
        await bot.aclose()
