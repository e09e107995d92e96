"""``kerberos-bot sandbox up`` / ``down``: the sandbox on its own, reached only through what it prints
(endpoints.json): the bot answers a signed command, and the stand-ins' admin endpoints seed, count
and inject faults for someone's own checks."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form

from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


def _present(path: Path) -> bool:
    return path.exists()


def _json_if_written(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None


async def _until_file(path: Path, proc: asyncio.subprocess.Process, timeout: float = 150.0) -> dict[str, Any]:
    """The file the other process writes when it is ready (or its output, if it stopped first)."""
    async with asyncio.timeout(timeout):
        while (written := _json_if_written(path)) is None:
            if proc.returncode is not None:
                assert proc.stdout is not None
                pytest.fail((await proc.stdout.read()).decode())
            await asyncio.sleep(0.2)  # another process: no event to wait on but the file
    return written


async def test_sandbox_up_prints_its_endpoints_and_down_stops_it(tmp_path: Path) -> None:
    addresses = ",".join(d.address for d in sandbox_domains())
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/0"}  # its own random prefix, dropped on exit
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "up", "--workdir", str(tmp_path), "--dc-addresses", addresses,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        where = await _until_file(tmp_path / "endpoints.json", up)
        assert _present(Path(where["configuration"]))
        slack, entra, bot = where["slack_standin"], where["entra_standin"], where["bot"]
        async with aiohttp.ClientSession() as session:
            # the admin endpoints want their key
            async with session.get(slack["admin"] + "counts") as refused:
                assert refused.status == 403
            trust = ssl.create_default_context(cafile=entra["ca_file"])  # the stand-in's private CA
            async with session.get(entra["admin"] + "counts", headers=entra["admin_header"], ssl=trust) as counts:
                assert counts.status == 200 and "graph" in await counts.json()
            # seeding: a change made outside the bot, as Entra's audit log would show it
            outside = {"domain": "contoso.test", "activity": "Update kerberos domain", "initiated_by_user": "eve@x"}
            async with session.post(
                entra["admin"] + "audit-events", json=outside, headers=entra["admin_header"], ssl=trust
            ) as seeded:
                assert seeded.status == 201
            # a signed command, as Slack sends it; the reply reaches the stand-in's response URL
            response_url = slack["web_api"].replace("/api/", "/response/") + "standalone-1"
            form = slash_command_form("status contoso.test", response_url=response_url)
            ack = await send_slash_command(session, bot["slack_events"], bot["signing_secret"], form)
            assert ack.status == 200
            async with asyncio.timeout(60):
                while True:
                    async with session.get(slack["admin"] + "calls", headers=slack["admin_header"]) as calls:
                        replies = [c for c in (await calls.json())["calls"] if c["name"] == "standalone-1"]
                    if replies:
                        break
                    await asyncio.sleep(0.2)
            shown = json.dumps(replies[0]["body"])
            assert "Kerberos status: contoso.test" in shown and "eve@x" in shown  # the seeded audit event
            # a fault for the next call of a method: Slack's rate limit
            fault = {"method": "chat.postMessage", "status": 429, "retry_after": 2}
            async with session.post(slack["admin"] + "faults", json=fault, headers=slack["admin_header"]) as ok:
                assert ok.status == 200
            async with session.post(slack["web_api"] + "chat.postMessage", json={"channel": "C1"}) as limited:
                assert limited.status == 429 and limited.headers["Retry-After"] == "2"
        down = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "sandbox", "down", "--workdir", str(tmp_path), "--keep-dcs", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        said, _ = await asyncio.wait_for(down.communicate(), 90)
        assert down.returncode == 0, said.decode()
        assert await asyncio.wait_for(up.wait(), 30) == 0
        assert not _present(tmp_path / "endpoints.json") and not _present(tmp_path / "sandbox.pid")
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
