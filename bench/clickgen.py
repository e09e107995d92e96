"""Send signed Approve clicks at C concurrent clients, as Slack does; print when each went out, as JSON.

Runs as its own process, like ``loadgen.py``, so that the clients never share the measured server's event
loop. The clicks come as JSON on stdin: ``[{"user": …, "value": …, "ts": …, "channel": …}, …]``; it prints
``{"sent": {ts: monotonic seconds}, "statuses": {…}, "acks": [seconds, …]}`` (CLOCK_MONOTONIC is one clock
for every process on the machine, so the caller matches each click with the card update the Slack stand-in
received for its ts).

usage: clickgen.py ENDPOINT SIGNING_SECRET CONCURRENCY < clicks.json
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

import aiohttp
from kerberos_sandbox.slack_requests import block_actions_payload, interaction_form, send_slash_command

from handlers.views.cards import APPROVE_ACTION


async def main(endpoint: str, secret: str, concurrency: int, clicks: list[dict[str, Any]]) -> None:
    sent: dict[str, float] = {}
    acks: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for click in clicks:
        queue.put_nowait(click)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while True:
                try:
                    click = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                payload = block_actions_payload(
                    user_id=click["user"],
                    action_id=APPROVE_ACTION,
                    value=click["value"],
                    channel_id=click["channel"],
                    message_ts=click["ts"],
                )
                sent[click["ts"]] = time.monotonic()
                ack = await send_slash_command(session, endpoint, secret, interaction_form(payload))
                statuses[ack.status] = statuses.get(ack.status, 0) + 1
                acks.append(ack.seconds)

        gc.disable()  # as the load generator's: no collection pauses the clicks while the clock runs
        try:
            await asyncio.gather(*(client() for _ in range(concurrency)))
        finally:
            gc.enable()
    print(json.dumps({"sent": sent, "statuses": statuses, "acks": acks}))


if __name__ == "__main__":
    ep, sec, c = sys.argv[1:4]
    asyncio.run(main(ep, sec, int(c), json.loads(sys.stdin.read())))
