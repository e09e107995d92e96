"""A bare slack-bolt app with one no-op ``/kerberos`` command, in its own process: the baseline.

Same aiohttp stack as the bot (``bot.entrypoints.web``); prints its events URL on stdout once it listens.
By default Bolt as a newcomer gets it (``process_before_response=False``: Bolt looks for the
acknowledgement every 10 ms); ``before-response`` runs it as the bot runs its own app (answered the
moment the listener returns), so the bench can show the bot beside both.

usage: python -m bench.bare_bolt SIGNING_SECRET SLACK_API_URL BOT_TOKEN [before-response]
"""

from __future__ import annotations

import asyncio
import sys

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.entrypoints.web import EVENTS_PATH, build_web_app, start_site


async def main(secret: str, api_url: str, token: str, mode: str = "") -> None:
    app = AsyncApp(
        signing_secret=secret,
        client=AsyncWebClient(token=token, base_url=api_url),
        process_before_response=mode == "before-response",
    )

    @app.command("/kerberos")
    async def noop(ack: AsyncAck) -> None:
        await ack()

    runner, port = await start_site(build_web_app(app, signing_secret=secret))
    print(f"http://127.0.0.1:{port}{EVENTS_PATH}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
