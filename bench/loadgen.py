"""Send N signed slash commands at C concurrent clients; print the ack latencies as JSON.

Runs as its own process so the load generator never shares the measured server's event loop.
usage: loadgen.py ENDPOINT SIGNING_SECRET RESPONSE_URL_BASE TEXT REQUESTS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import aiohttp

from bot.sandbox.slack_standin import send_slash_command, slash_command_form


async def main(endpoint: str, secret: str, response_base: str, text: str, total: int, concurrency: int) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                form = slash_command_form(text, response_url=f"{response_base}/{uuid.uuid4().hex}")
                ack = await send_slash_command(session, endpoint, secret, form)
                statuses[ack.status] = statuses.get(ack.status, 0) + 1
                latencies.append(ack.seconds)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    print(json.dumps({"latencies": latencies, "statuses": statuses}))


if __name__ == "__main__":
    ep, sec, base, txt, n, c = sys.argv[1:7]
    asyncio.run(main(ep, sec, base, txt, int(n), int(c)))
