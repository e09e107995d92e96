"""The servers the latency bench measures, each in a process of its own as in production: ``kerberos-bot
serve`` on the sandbox's configuration (with its command worker, on a Redis of the bench's own), and a bare
slack-bolt app (``bench/bare_bolt.py``); and what the bench reads of them (memory, log warnings)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from kerberos_sandbox.redis_server import PrivateRedis, free_port
from kerberos_sandbox.sandbox import Sandbox

from bench.cores import Cores, pin, pinned_at_start, set_nice
from bot.adapters.redis.client import connect
from bot.entrypoints.web import EVENTS_PATH
from tests.support.processes import children
from tests.support.served import serve_environment

SERVE_LOG = Path(tempfile.gettempdir()) / "kerberos-bot-bench-serve.log"  # serve's and its workers' log lines
BARE_SECRET = "bare-bolt-signing-secret"
BOT_SECRET = "bench-bot-signing-secret"


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
    env = serve_environment(box, secret=BOT_SECRET, redis_url=redis_url, config=box.config_path)
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
