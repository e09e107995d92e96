"""Acknowledgement latency of /kerberos status against a bare slack-bolt app, and the cost of a status.

Starts the sandbox (real Samba DCs, Entra and Slack stand-ins, the bot) and, in the same process,
a bare slack-bolt AsyncApp on the same aiohttp stack with one no-op command. A separate load
generator process sends signed slash commands at 50 concurrent clients to each, alternating
rounds, and this script prints p50/p99 of the acknowledgements and their ratio (goal <= 1.25).
Then it runs one status per domain and prints the LDAP operations, Graph calls, module-store calls
and token requests it made (goals: <= 3 LDAP operations per domain, no token request when the
msal cache is warm).

usage: python bench/ack_latency.py [--requests 2000] [--concurrency 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.sandbox import sandbox
from bot.web import EVENTS_PATH, build_web_app, start_site

BARE_SECRET = "bare-bolt-signing-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def start_bare_bolt(api_url: str, token: str) -> tuple[web.AppRunner, str]:
    app = AsyncApp(
        signing_secret=BARE_SECRET,
        client=AsyncWebClient(token=token, base_url=api_url),
        process_before_response=False,
    )

    @app.command("/kerberos")
    async def noop(ack: AsyncAck) -> None:
        await ack()

    runner, port = await start_site(build_web_app(app))
    return runner, f"http://127.0.0.1:{port}{EVENTS_PATH}"


async def load(endpoint: str, secret: str, requests: int, concurrency: int, reply_wait: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        endpoint,
        secret,
        "status",
        str(requests),
        str(concurrency),
        str(reply_wait),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def main(requests: int, concurrency: int, rounds: int) -> None:
    async with sandbox() as box:
        bare_runner, bare_endpoint = await start_bare_bolt(box.slack.api_url, box.slack.bot_token)
        samples: dict[str, list[float]] = {"bare bolt": [], "kerberos-bot": []}
        codes: dict[str, dict[str, int]] = {"bare bolt": {}, "kerberos-bot": {}}
        replies = 0
        try:
            # warm-up: connections, msal token, LDAP binds
            await box.command("status")
            for _ in range(rounds):
                for name, endpoint, secret in (
                    ("bare bolt", bare_endpoint, BARE_SECRET),
                    ("kerberos-bot", box.endpoint, box.signing_secret),
                ):
                    # the bot replies to every command; the bare app never does
                    wait = 30.0 if name == "kerberos-bot" else 0.0
                    result = await load(endpoint, secret, requests // rounds, concurrency, wait)
                    samples[name] += result["latencies"]
                    if name == "kerberos-bot":
                        replies += result["replies"]
                    for code, count in result["statuses"].items():
                        codes[name][code] = codes[name].get(code, 0) + count
        finally:
            await bare_runner.cleanup()

        print(f"ack latency, {requests} signed /kerberos status requests each, {concurrency} concurrent clients")
        print(f"{'target':<14}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}  HTTP statuses")
        for name, values in samples.items():
            print(
                f"{name:<14}{percentile(values, 50) * 1000:>10.1f}{percentile(values, 99) * 1000:>10.1f}"
                f"{statistics.mean(values) * 1000:>10.1f}  {codes[name]}"
            )
        p50 = percentile(samples["kerberos-bot"], 50) / percentile(samples["bare bolt"], 50)
        p99 = percentile(samples["kerberos-bot"], 99) / percentile(samples["bare bolt"], 99)
        print(f"ratio kerberos-bot / bare bolt: p50 {p50:.2f}, p99 {p99:.2f} (goal <= 1.25)")
        print(f"status replies delivered to response URLs: {replies} of {len(samples['kerberos-bot'])}")

        print("\ncost of one status, per domain (warm caches)")
        await asyncio.sleep(1)
        for domain in box.domains:
            directory = box.components.directories[domain.name]
            ldap_before = getattr(directory, "operations", 0)
            entra_before = dict(box.entra.request_counts())
            await box.components.services.status.status(domain.name)
            ldap_ops = getattr(directory, "operations", 0) - ldap_before
            after = box.entra.request_counts()
            delta = {k: after.get(k, 0) - entra_before.get(k, 0) for k in after}
            print(
                f"{domain.name:<16} LDAP operations {ldap_ops} (goal <= 3); stand-in requests: "
                + ", ".join(f"{k} {v}" for k, v in sorted(delta.items()) if v)
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.rounds))
