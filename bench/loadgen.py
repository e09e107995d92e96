"""Send N signed slash commands at C concurrent clients; print the ack latencies as JSON.

Runs as its own process so the load generator never shares the measured server's event loop.
It also serves the response URLs the commands carry (as Slack would, elsewhere) and reports how
many replies arrived, so the bench checks that every command was answered.

Each client's connection is opened before the clock starts, by a signed ``ssl_check`` (the check Slack
itself sends, which both servers answer at once): the timed commands all go over open connections, and the
openings are reported apart. Fifty connections opened at once queue behind one another on the server's core,
as much on one server as on the other (the same aiohttp); timed with the commands, they were a quarter of
each round's figures and the whole of its p99.

usage: loadgen.py ENDPOINT SIGNING_SECRET TEXT REQUESTS CONCURRENCY REPLY_WAIT_SECONDS [REPLY_BASE [CHANNELS]]

With REPLY_BASE (the Slack stand-in's URL, an origin the bot posts replies to) the response URLs point
there instead, and the caller counts the replies the stand-in received. CHANNELS: the commands are typed
in that many channels in turn (C0BENCH000…; default one, C0PLATFORM), as a company's teams would.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
import uuid

import aiohttp
from aiohttp import web
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form

from bot.entrypoints.web import start_site


async def main(
    endpoint: str,
    secret: str,
    text: str,
    total: int,
    concurrency: int,
    reply_wait: float,
    reply_base: str = "",
    channels: int = 1,
) -> None:
    replies = 0
    all_replied = asyncio.Event()

    async def sink(request: web.Request) -> web.Response:
        nonlocal replies
        await request.read()
        replies += 1
        if replies >= total:
            all_replied.set()
        return web.Response(text="ok")

    app = web.Application(client_max_size=4 << 20)
    app.router.add_post("/response/{rid}", sink)
    runner, port = await start_site(app)
    latencies: list[float] = []
    sent: dict[str, float] = {}  # response URL id -> when its command went out (the system's monotonic clock)
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def open_connection() -> float:
            check = f"ssl_check=1&token={uuid.uuid4().hex}"  # each its own signature: none is a replay
            answered = await send_slash_command(session, endpoint, secret, check)
            if answered.status != 200:
                raise RuntimeError(f"the ssl_check that opens a connection was answered {answered.status}")
            return answered.seconds

        # all at once, so that each client has a connection of its own in the pool
        openings = await asyncio.gather(*(open_connection() for _ in range(concurrency)))

        async def client() -> None:
            while True:
                try:
                    number = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                channel = f"C0BENCH{number % channels:03d}" if channels > 1 else "C0PLATFORM"
                rid = uuid.uuid4().hex
                url = f"{reply_base or f'http://127.0.0.1:{port}'}/response/{rid}"
                sent[rid] = time.monotonic()
                # many people, as in a company: one person's status requests are rate-limited
                form = slash_command_form(
                    text, response_url=url, user_id=f"U0LOAD{uuid.uuid4().int % 1000:03d}", channel_id=channel
                )
                ack = await send_slash_command(session, endpoint, secret, form)
                statuses[ack.status] = statuses.get(ack.status, 0) + 1
                latencies.append(ack.seconds)

        # no collection while the clock runs: a full one paused this process 14-16 ms once a round (2,000 commands),
        # stopping its fifty clients at once, a pause that fell on either server's round by chance
        gc.disable()
        try:
            await asyncio.gather(*(client() for _ in range(concurrency)))
        finally:
            gc.enable()
    if reply_wait > 0 and not reply_base:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_replied.wait(), reply_wait)
    await runner.cleanup()
    print(
        json.dumps(
            {"latencies": latencies, "statuses": statuses, "replies": replies, "sent": sent, "openings": openings}
        )
    )


if __name__ == "__main__":
    ep, sec, txt, n, c, wait = sys.argv[1:7]
    base = sys.argv[7] if len(sys.argv) > 7 else ""
    asyncio.run(main(ep, sec, txt, int(n), int(c), float(wait), base, int(sys.argv[8]) if len(sys.argv) > 8 else 1))
