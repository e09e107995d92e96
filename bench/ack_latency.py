"""Acknowledgement latency of /kerberos status against a bare slack-bolt app, and the cost of a status.

Starts the sandbox (real Samba DCs, Entra and Slack stand-ins) in this process, and the two servers
under test each in a process of its own, as they would run in production: ``kerberos-bot serve``
configured against the sandbox, and a bare slack-bolt AsyncApp on the same aiohttp stack with one
no-op command (``bench/bare_bolt.py``). A separate load generator process sends signed slash
commands at 50 concurrent clients to each, alternating rounds, and serves the response URLs; this
script prints p50/p99 of the acknowledgements and their ratio (goal <= 1.25). Then it runs one
status per domain in the sandbox's own bot and prints the LDAP operations, Graph calls,
module-store calls and token requests it made (goals: <= 3 LDAP operations per domain, no token
request when the msal cache is warm).

Then it files requests through the bot and clicks Approve on each (``bench/clickgen.py``, 50 clients):
the time from a click to the card's update at the Slack stand-in.

usage: python -m bench.ack_latency [--requests 2000] [--concurrency 50] [--rounds 10] [--command-workers 1]
                                   [--cards 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from kerberos_sandbox.redis_server import PrivateRedis
from kerberos_sandbox.sandbox import Sandbox, sandbox

from bench.cores import STAND_IN_NICE, Cores, cpu_seconds, pin, pin_samba, pinned_at_start, set_nice, split
from bot.adapters.redis.client import connect
from bot.entrypoints.web import EVENTS_PATH

SERVE_LOG = Path(tempfile.gettempdir()) / "kerberos-bot-bench-serve.log"  # serve's and its workers' log lines
BARE_SECRET = "bare-bolt-signing-secret"
BOT_SECRET = "bench-bot-signing-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def warnings_in(log: Path) -> list[str]:
    """The warning and error lines of a JSON-lines log."""
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []:
        with contextlib.suppress(ValueError):
            if json.loads(line).get("level") in ("warning", "error", "critical"):
                found.append(line[:300])
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MiB; 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else 0.0


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (serve's command workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def memory_line(pid: int) -> str:
    workers = [rss_mib(child) for child in children(pid)]
    worker = f"; command worker(s) {', '.join(f'{w:.0f}' for w in workers)} MiB" if workers else ""
    return f"serve {rss_mib(pid):.0f} MiB{worker}"


@asynccontextmanager
async def bot_process(
    box: Sandbox, redis_url: str, command_workers: int, cores: Cores | None
) -> AsyncIterator[tuple[str, int]]:
    """``kerberos-bot serve`` on the sandbox's configuration, alone in its process (logs as in production,
    JSON at INFO, to ``SERVE_LOG``)."""
    port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "SLACK_SIGNING_SECRET": BOT_SECRET,
        "SLACK_BOT_TOKEN": box.slack.bot_token,
        "SLACK_API_URL": box.slack.api_url,
        "REDIS_URL": redis_url,
        "KERBEROS_BOT_CONFIG": str(box.config_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--health-port", str(health_port), "--command-workers", str(command_workers),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=SERVE_LOG.open("wb"),
        preexec_fn=pinned_at_start(cores.measured if cores else None),
    )  # fmt: skip
    try:
        await wait_healthy(f"http://127.0.0.1:{health_port}/healthz", proc)
        if cores is not None:  # serve's command workers inherited its core: they belong with the rest
            for worker in children(proc.pid):
                pin(worker, cores.rest)
        yield f"http://127.0.0.1:{port}{EVENTS_PATH}", proc.pid
    finally:
        await stop(proc)
        client = connect(redis_url)
        keys = [key async for key in client.scan_iter(match="{kerberos-bot}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@asynccontextmanager
async def bare_bolt_process(box: Sandbox, cores: Cores | None, mode: str = "") -> AsyncIterator[tuple[str, int]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare_bolt", BARE_SECRET, box.slack.api_url, box.slack.bot_token, mode,
        stdout=asyncio.subprocess.PIPE, preexec_fn=pinned_at_start(cores.measured if cores else None),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        endpoint = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        yield endpoint, proc.pid
    finally:
        await stop(proc)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def load(
    endpoint: str,
    secret: str,
    requests: int,
    concurrency: int,
    reply_wait: float,
    box: Sandbox | None = None,
    *,
    text: str = "status",
    channels: int = 1,
) -> dict[str, Any]:
    """``box``: the replies go to its Slack stand-in (an origin the bot posts replies to) and are counted there."""
    before = len(box.slack.responses()) if box is not None else 0
    reply_base = [box.slack.url, str(channels)] if box is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        endpoint,
        secret,
        text,
        str(requests),
        str(concurrency),
        str(reply_wait),
        *reply_base,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=pinned_at_start(None),  # at normal priority, beside this process's stand-ins
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out)
    if box is not None:
        result["replies"] = await box.slack.wait_for_response_count(before + requests, reply_wait) - before
        # command sent to its answer at the response URL: CLOCK_MONOTONIC is one clock for every process here
        arrived = {c.name: c.at for c in box.slack.calls if c.kind == "response_url"}
        sent: dict[str, float] = result["sent"]
        result["reply_latencies"] = [arrived[rid] - at for rid, at in sent.items() if rid in arrived]
    return result


# the bench's policy for the click phase: approvals by a Slack click (no sign-in), two needed, so a click
# updates the card without starting a change; one person's rates do not limit a burst of many
BENCH_CONFIG = """clicks_per_minute = 1000000
requests_per_hour = 1000000

[approvals.rotate_force]
verified_approval = false
approvals_required = 2
"""
APPROVERS = ("U0BOB", "U0CAROL", "U0DAVE")
BARE = "bare bolt"  # as a newcomer gets it: Bolt looks for the acknowledgement every 10 ms
BARE_BEFORE = "bare bolt, process_before_response"  # answered when the listener returns, as the bot's app is
CARD_CHANNELS = 50


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


async def click_to_card(
    box: Sandbox, endpoint: str, cards: int, concurrency: int
) -> tuple[list[float], list[float], int]:
    """File ``cards`` requests through the bot, then click Approve on each at ``concurrency`` clients (from
    ``bench/clickgen.py``, a process of its own); returns, per click, the time until the Slack stand-in received
    the card's update, the clicks' acknowledgements, and how many were answered with a refusal."""
    posted_before = len(box.slack.api_calls("chat.postMessage"))
    # in many channels, as a company's teams would: Slack lets a bot post about one message a second per channel
    filed = await load(
        endpoint, BOT_SECRET, cards, 10, 60.0, box, text="rotate contoso.test --force -- bench", channels=CARD_CHANNELS
    )
    if filed["statuses"] != {"200": cards}:
        raise RuntimeError(f"filing the requests: {filed['statuses']}")
    found: list[dict[str, str]] = []
    for _ in range(600):
        posts = box.slack.api_calls("chat.postMessage")[posted_before:]
        found = [
            {"value": str(action["value"]), "ts": c.ts, "channel": str(c.body["channel"])}
            for c in posts
            for block in _blocks(c.body)
            if block.get("type") == "actions"
            for action in block.get("elements", [])[:1]
        ]
        if len(found) >= cards:
            break
        await asyncio.sleep(0.1)
    clicks = [{**card, "user": APPROVERS[i % len(APPROVERS)]} for i, card in enumerate(found)]
    updates_before = len(box.slack.api_calls("chat.update"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.clickgen", endpoint, BOT_SECRET, str(concurrency),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, preexec_fn=pinned_at_start(None),
    )  # fmt: skip
    out, _ = await proc.communicate(json.dumps(clicks).encode())
    clicked = json.loads(out)
    sent: dict[str, float] = clicked["sent"]
    refused = [c for c in box.slack.api_calls("chat.postEphemeral") if c.at >= min(sent.values(), default=0.0)]
    for _ in range(600):
        updated = {str(c.body.get("ts")): c.at for c in box.slack.api_calls("chat.update")[updates_before:]}
        if len(set(updated) & set(sent)) >= len(sent):
            break
        await asyncio.sleep(0.1)
    return [updated[ts] - at for ts, at in sent.items() if ts in updated], clicked["acks"], len(refused)


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks", [])
    return list(json.loads(blocks) if isinstance(blocks, str) else blocks)


@asynccontextmanager
async def bench_redis(given: str | None) -> AsyncIterator[str]:
    """``given``, or a private redis-server started from this process (so on its cores), without persistence
    as a cache-only Redis runs; the bot's keys are removed after either."""
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        server = PrivateRedis(Path(directory), "--appendonly", "no")
        await server.start()
        set_nice(server.pid, 0)  # started by this process, whose stand-ins run lower
        try:
            yield server.url
        finally:
            await server.stop()


async def main(
    requests: int, concurrency: int, rounds: int, redis_url: str | None, command_workers: int, cards: int
) -> None:
    cores = split()
    if cores is not None:
        pin(os.getpid(), cores.rest)  # this process, and all it starts unless told otherwise
    set_nice(
        os.getpid(), STAND_IN_NICE
    )  # its Entra and Slack stand-ins (and the DCs it starts) stand for remote services
    async with bench_redis(redis_url) as bot_redis, sandbox(extra_config=BENCH_CONFIG) as box:
        if cores is not None:
            pin_samba(cores.rest)  # DCs kept running from an earlier start
        samples: dict[str, list[float]] = {BARE: [], BARE_BEFORE: [], "kerberos-bot": []}
        cpu: dict[str, float] = dict.fromkeys(samples, 0.0)  # the server process's CPU seconds in its rounds
        reply_latencies: list[float] = []
        codes: dict[str, dict[str, int]] = {name: {} for name in samples}
        replies = 0
        bot = bot_process(box, bot_redis, command_workers, cores)
        async with (
            bot as (bot_endpoint, bot_pid),
            bare_bolt_process(box, cores) as (bare_endpoint, bare_pid),
            bare_bolt_process(box, cores, "before-response") as (bare_before_endpoint, bare_before_pid),
        ):
            idle = memory_line(bot_pid)
            # warm-up: connections, msal token, LDAP binds, in every server
            await load(bot_endpoint, BOT_SECRET, 50, 10, 30.0, box)
            await load(bare_endpoint, BARE_SECRET, 50, 10, 0.0)
            await load(bare_before_endpoint, BARE_SECRET, 50, 10, 0.0)
            round_ratios: list[tuple[float, float]] = []
            for _ in range(rounds):
                this_round: dict[str, list[float]] = {}
                for name, endpoint, secret, pid in (
                    (BARE, bare_endpoint, BARE_SECRET, bare_pid),
                    ("kerberos-bot", bot_endpoint, BOT_SECRET, bot_pid),
                    (BARE_BEFORE, bare_before_endpoint, BARE_SECRET, bare_before_pid),
                ):
                    # the bot replies to every command; the bare app never does
                    replied_to = box if name == "kerberos-bot" else None
                    wait = 30.0 if replied_to is not None else 0.0
                    used = cpu_seconds(pid)
                    result = await load(endpoint, secret, requests // rounds, concurrency, wait, replied_to)
                    cpu[name] += cpu_seconds(pid) - used
                    samples[name] += result["latencies"]
                    this_round[name] = result["latencies"]
                    if name == "kerberos-bot":
                        replies += result["replies"]
                        reply_latencies += result["reply_latencies"]
                    for code, count in result["statuses"].items():
                        codes[name][code] = codes[name].get(code, 0) + count
                mine, bare = this_round["kerberos-bot"], this_round[BARE]
                round_ratios.append(
                    (percentile(mine, 50) / percentile(bare, 50), percentile(mine, 99) / percentile(bare, 99))
                )
            loaded = memory_line(bot_pid)
            card_latencies, click_acks, refused = (
                await click_to_card(box, bot_endpoint, cards, concurrency) if cards else ([], [], 0)
            )

        print(
            f"ack latency, {requests} signed /kerberos status requests each, {concurrency} concurrent clients; "
            f"kerberos-bot serve --command-workers {command_workers}"
        )
        print(f"cores: {cores.describe()}" if cores else "cores: one, shared by everything (no fair split)")
        print(f"priority: the DCs and the Entra and Slack stand-ins at nice {STAND_IN_NICE}, the rest at 0")
        print(f"{'target':<34}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'CPU/req ms':>12}  HTTP statuses")
        for name, values in samples.items():
            print(
                f"{name:<34}{percentile(values, 50) * 1000:>10.1f}{percentile(values, 99) * 1000:>10.1f}"
                f"{statistics.mean(values) * 1000:>10.1f}{cpu[name] / len(values) * 1000:>12.2f}  {codes[name]}"
            )
        for baseline in (BARE, BARE_BEFORE):
            p50 = percentile(samples["kerberos-bot"], 50) / percentile(samples[baseline], 50)
            p99 = percentile(samples["kerberos-bot"], 99) / percentile(samples[baseline], 99)
            goal = " (goal <= 1.25)" if baseline == BARE else ""
            print(f"ratio kerberos-bot / {baseline}: p50 {p50:.2f}, p99 {p99:.2f}{goal}")
        print(
            f"  spread over the {rounds} rounds: p50 ratio {spread([r[0] for r in round_ratios])}, "
            f"p99 ratio {spread([r[1] for r in round_ratios])}"
        )
        print(f"status replies delivered to response URLs: {replies} of {len(samples['kerberos-bot'])}")
        if replies < len(samples["kerberos-bot"]):
            print(f"  some never came: serve's log (its workers' too) is {SERVE_LOG}; its last warnings and errors:")
            for line in warnings_in(SERVE_LOG)[-5:]:
                print(f"  {line}")
        if reply_latencies:
            print(
                f"reply latency (command sent to its answer at the response URL): p50 "
                f"{percentile(reply_latencies, 50) * 1000:.0f} ms, p99 {percentile(reply_latencies, 99) * 1000:.0f} ms"
            )
        if card_latencies:
            print(
                f"click to card update ({len(card_latencies)} of {cards} Approve clicks on a Slack-only policy, "
                f"{concurrency} clients, the update as the Slack stand-in received it): p50 "
                f"{percentile(card_latencies, 50) * 1000:.0f} ms, p99 {percentile(card_latencies, 99) * 1000:.0f} ms"
            )
            print(
                f"  the clicks' acknowledgements: p50 {percentile(click_acks, 50) * 1000:.0f} ms, p99 "
                f"{percentile(click_acks, 99) * 1000:.0f} ms; answered with a refusal: {refused}"
            )
        print(f"resident memory at idle: {idle}; after the load: {loaded}")

        print("\ncost of one status, per domain (warm caches)")
        await box.command("status")  # warms the sandbox's own bot: token, binds, DC map
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
    parser.add_argument(
        "--rounds", type=int, default=10, help="alternating rounds per server: the machine's drift falls on both alike"
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="the bot process's Redis (its keys are removed); default: a private redis-server on the bench's cores",
    )
    parser.add_argument(
        "--command-workers", type=int, default=1, help="passed to kerberos-bot serve (0: the work runs in its process)"
    )
    parser.add_argument("--cards", type=int, default=200, help="Approve clicks timed to their card update (0: none)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.rounds, args.redis_url, args.command_workers, args.cards))
