"""What each piece of an acknowledged command costs `serve` alone, in CPU microseconds per command.

The ack bench (``bench.ack_latency``) prints the whole: the bot's CPU per request beside bare Bolt's. This one
prints the parts the bot adds, each in a loop of its own on this process's CPU clock, so a lever worth a few
microseconds shows here though it is lost in the whole's noise: the queue entry's MAC, the command's JSON log
line, the queue entry written to Redis (the MAC included, 50 callers at once, as the group commit batches
them under load), the replay check (the same), and the metrics each command counts. Then the whole dispatch of
one `/kerberos status` through Bolt (the gate included, Redis not: the queue is in memory), bare Bolt's and the
bot's, 50 at once as under load: what the bot's listener adds beside the pieces above.

usage: python -m bench.hot_path [--rounds 7] [--redis-url redis://…] (default: a private redis-server)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

from bot.entrypoints.cli import run_on_uvloop

CALLERS = 50  # the ack bench's clients
LOOPS = 20_000  # for the pieces that do not wait on Redis
PER_CALLER = 200  # for the pieces that do


def per_call(loops: int, piece: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(loops):
        piece()
    return (time.process_time() - started) / loops * 1e6


async def per_await(piece: Callable[[int, int], Awaitable[object]]) -> float:
    async def caller(who: int) -> None:
        for turn in range(PER_CALLER):
            await piece(who, turn)

    started = time.process_time()
    await asyncio.gather(*(caller(who) for who in range(CALLERS)))
    return (time.process_time() - started) / (CALLERS * PER_CALLER) * 1e6


async def main(rounds: int, redis_url: str | None) -> None:
    # the metrics as serve keeps them: shared by its processes through files
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-metrics-"))
    from bench.servers import bench_redis
    from bot.adapters.redis.client import connect
    from bot.adapters.redis.commands import RedisCommandQueue
    from bot.adapters.redis.replay import RedisReplayGuard
    from bot.domain.integrity import Signer
    from bot.domain.ports import DeferredCommand
    from bot.observability.logs import JsonFormatter
    from bot.observability.metrics import Metrics
    from bot.services.command_queue import SignedCommandQueue

    signer = Signer(os.urandom(32))
    command = DeferredCommand(
        text="status",
        user_id="U0ALICE",
        channel_id="C0PLATFORM",
        reply_to="https://hooks.slack.com/commands/T0/1/abc",
        request_id=uuid.uuid4().hex[:12],
        queued_at=datetime.now(UTC),
        team_id="T0CONTOSO",
        app_id="A0KERBEROS",
    )
    handler = logging.StreamHandler(io.StringIO())  # the line's making and writing, not a disk's speed
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bench.hot_path")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    metrics = Metrics.create()

    def first_time(round_: int, who: int, turn: int) -> Awaitable[bool]:  # a new nonce each time
        return guard.first_time(f"{round_}.{who}", str(turn))

    def count() -> None:
        metrics.commands.labels("status", "ok").inc()
        metrics.ack_seconds.labels("command").observe(0.02)

    async with bench_redis(redis_url) as url:
        client = connect(url)
        prefix = f"kbot-bench-{uuid.uuid4().hex[:8]}"
        queue = SignedCommandQueue(RedisCommandQueue(client, prefix), signer)
        guard = RedisReplayGuard(client, prefix)
        print(
            f"CPU microseconds per command, the least and the median of {rounds} rounds (a shared machine only ever "
            f"adds); Redis pieces with {CALLERS} callers at once"
        )
        figures: dict[str, list[float]] = {}
        try:
            for round_ in range(rounds):
                for name, figure in (
                    ("queue entry's MAC", per_call(LOOPS, lambda: signer.command_mac(command))),
                    ("JSON log line", per_call(LOOPS, lambda: logger.info("/kerberos %s", "status"))),
                    ("metrics (a counter, a histogram)", per_call(LOOPS, count)),
                    ("queue entry, signed and written", await per_await(lambda _who, _turn: queue.put(command))),
                    ("replay check", await per_await(partial(first_time, round_))),
                ):
                    figures.setdefault(name, []).append(figure)
                await client.delete(f"{prefix}:commands")
        finally:
            keys = [key async for key in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        for name, values in figures.items():
            print(f"  {name:<36} {min(values):6.1f}  ({statistics.median(values):.1f})")
    dispatches = await dispatch_figures(rounds)
    print("Bolt's dispatch of one /kerberos status, the gate included (no Redis), 50 at once:")
    for name, values in dispatches.items():
        print(f"  {name:<36} {min(values):6.1f}  ({statistics.median(values):.1f})")


async def dispatch_figures(rounds: int) -> dict[str, list[float]]:
    """CPU microseconds per dispatch: bare Bolt answering when its no-op listener returns (as the bot's app
    answers), and the bot's app on fakes (status on in-memory directories, the command queue in memory)."""
    from kerberos_sandbox.slack_requests import signed_headers, slash_command_form
    from kerberos_sandbox.slack_standin import SlackStandIn
    from multidict import CIMultiDict
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.adapters.memory.ports import MemoryCommandQueue
    from bot.domain.gpo import KdcProxySetting
    from bot.entrypoints.web import bolt_request_of
    from bot.services.container import BotServices
    from bot.services.status import StatusService
    from handlers.app import build_bolt_app
    from handlers.boundary import IN_FLIGHT
    from handlers.payloads import Refusal, gate
    from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state

    secret = "bench-signing-secret-0123456789abcdef"
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW))}
    status = StatusService(directories, FakeKerberosModule.in_step(directories), FakeEntra(), clock=lambda: NOW)
    services = BotServices(status=status, kdc_proxy=KdcProxySetting("a1b2c3d4-0000-4000-8000-00000000c0de"))
    body = slash_command_form("status", response_url="https://hooks.slack.com/commands/T0/1/abc")
    raw = body.encode()
    figures: dict[str, list[float]] = {}
    async with SlackStandIn() as slack:  # Bolt's authorization asks auth.test once
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        bare = AsyncApp(signing_secret=secret, client=client, process_before_response=True)

        @bare.command("/kerberos")
        async def noop(ack: AsyncAck) -> None:
            await ack()

        bot = build_bolt_app(
            signing_secret=secret, client=client, services=services, command_queue=MemoryCommandQueue()
        )

        headers = CIMultiDict(signed_headers(secret, body))  # as aiohttp hands them over

        async def dispatch(app: AsyncApp) -> None:
            passed = gate(secret, raw, headers)
            if isinstance(passed, Refusal):
                raise RuntimeError(passed.reason)
            answered = await app.async_dispatch(bolt_request_of(passed.body, raw, headers))
            if answered.status != 200:
                raise RuntimeError(f"HTTP {answered.status}: {answered.body}")

        async def per_dispatch(app: AsyncApp) -> float:
            started = time.process_time()
            for _ in range(PER_CALLER):
                await asyncio.gather(*(dispatch(app) for _ in range(CALLERS)))
                while IN_FLIGHT.count:  # noqa: ASYNC110  # the bot's listeners carry on after their acknowledgement
                    await asyncio.sleep(0)
            return (time.process_time() - started) / (CALLERS * PER_CALLER) * 1e6

        for _ in range(rounds):
            for name, app in (("bare Bolt", bare), ("kerberos-bot", bot)):
                figures.setdefault(name, []).append(await per_dispatch(app))
    return figures


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server, removed after")
    args = parser.parse_args()
    run_on_uvloop(main(args.rounds, args.redis_url))  # serve's loop


if __name__ == "__main__":
    run()
