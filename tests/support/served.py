"""``kerberos-bot serve`` as a real process on a sandbox's Slack stand-in, for the tests that need the
process itself (its worker children, SIGKILL, SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kerberos_sandbox.redis_server import free_port
from kerberos_sandbox.sandbox import Sandbox


@dataclass(frozen=True)
class ServeProcess:
    proc: asyncio.subprocess.Process
    base: str  # Slack's endpoint is base + /slack/events
    health: str  # /healthz, /readyz, /metrics


def serve_environment(box: Sandbox, *, secret: str, redis_url: str, config: Path) -> dict[str, str]:
    """What ``serve`` reads from its environment to run on the sandbox: Slack's stand-in, Redis, the
    configuration (and no metrics directory of the process that starts it)."""
    env = {
        **os.environ,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_BOT_TOKEN": box.slack.bot_token,
        "SLACK_API_URL": box.slack.api_url,
        "REDIS_URL": redis_url,
        "KERBEROS_BOT_CONFIG": str(config),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


async def start_serve(box: Sandbox, *, secret: str, redis_url: str, config: Path, command_workers: int) -> ServeProcess:
    """Start it (not waiting for it to answer: the caller knows which readiness it needs)."""
    port, health_port = free_port(), free_port()
    env = serve_environment(box, secret=secret, redis_url=redis_url, config=config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--health-port", str(health_port), "--command-workers", str(command_workers), env=env,
    )  # fmt: skip
    return ServeProcess(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health_port}")
