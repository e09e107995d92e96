"""``kerberos-bot serve`` as deployed: one process acknowledges, a worker process it supervises replies.

The serving process and its worker are real processes on the sandbox's configuration (real Samba
DCs, the Entra and Slack stand-ins), so this covers what only separate processes show: the worker
restarted when it dies, its counters in the server's /metrics, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form

from bot.adapters.redis.client import connect
from tests.support.processes import children
from tests.support.samba import sandbox_domains
from tests.support.served import start_serve

pytestmark = pytest.mark.samba

REDIS_URL = "redis://127.0.0.1:6379/12"  # the served bot uses the default key prefix: its own database
SECRET = "serve-workers-test-secret"


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Served:
    box: Sandbox
    proc: asyncio.subprocess.Process
    base: str  # Slack's endpoint
    health: str  # /healthz, /readyz, /metrics

    async def status(self, text: str = "status contoso.test") -> list[dict[str, object]]:
        url = self.box.slack.new_response_url()
        form = slash_command_form(text, response_url=url, user_id="U0ALICE")
        ack = await send_slash_command(self.box.session, f"{self.base}/slack/events", SECRET, form)
        assert ack.status == 200 and "Checking" in ack.body
        return await self.box.slack.wait_for_responses(url, 1, timeout=30.0)

    async def get(self, path: str) -> tuple[int, str]:
        async with self.box.session.get(f"{self.health}{path}") as response:
            return response.status, await response.text()

    async def until(self, path: str, status: int, timeout: float = 30.0) -> str:
        last = "no answer"
        for _ in range(int(timeout / 0.2)):
            assert self.proc.returncode is None, f"kerberos-bot serve exited with {self.proc.returncode}"
            with contextlib.suppress(aiohttp.ClientConnectionError):  # still starting
                got, body = await self.get(path)
                if got == status:
                    return body
                last = f"{got} {body}"
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path} never answered {status} (last: {last})")


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with sandbox(sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox"))) as box:
        started = await start_serve(box, secret=SECRET, redis_url=REDIS_URL, config=box.config_path, command_workers=1)
        proc = started.proc
        running = Served(box, proc, started.base, started.health)
        try:
            await running.until("/readyz", 200, timeout=60.0)
            yield running
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            client = connect(REDIS_URL)
            async for key in client.scan_iter(match="{kerberos-bot}:*"):
                await client.delete(key)
            await client.aclose()


async def test_the_worker_process_answers_and_its_counts_reach_metrics(served: Served) -> None:
    [worker] = children(served.proc.pid)
    replies = await served.status()
    assert "Kerberos status: contoso.test" in json.dumps(replies)
    _, metrics = await served.get("/metrics")
    # counted in the worker process, exposed by the serving one
    assert 'kerberos_bot_commands_total{outcome="ok",subcommand="status"} 1.0' in metrics
    assert 'kerberos_bot_ack_seconds_count{kind="command"} 1.0' in metrics
    assert "kerberos_bot_source_seconds_bucket" in metrics
    assert children(served.proc.pid) == [worker]


async def test_a_dead_worker_is_replaced(served: Served) -> None:
    [worker] = children(served.proc.pid)
    os.kill(worker, signal.SIGKILL)
    for _ in range(150):  # /readyz answers from a 10-second cache: watch the processes instead
        now = children(served.proc.pid)
        if now and now != [worker]:
            break
        await asyncio.sleep(0.2)
    [replacement] = children(served.proc.pid)
    assert replacement != worker
    await served.until("/readyz", 200, timeout=30.0)
    assert "Kerberos status: contoso.test" in json.dumps(await served.status())
    _, metrics = await served.get("/metrics")
    # the dead worker's count is kept; its replacement adds to it
    assert 'kerberos_bot_commands_total{outcome="ok",subcommand="status"} 2.0' in metrics


async def test_sigterm_stops_the_server_and_its_worker(served: Served) -> None:
    [worker] = children(served.proc.pid)
    served.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.proc.wait(), 20.0) == 0
    assert not running(worker)
    with pytest.raises(aiohttp.ClientConnectionError):
        await served.get("/healthz")
