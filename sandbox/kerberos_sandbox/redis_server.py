"""A private redis-server (Debian's package) with append-only persistence: the demo's embedded Redis
when none answers at REDIS_URL, and the server the restart tests stop and start."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import redis.asyncio as aioredis

from bot.adapters.redis.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """``start()`` / ``restart()`` / ``stop()``; the data directory survives restarts."""

    def __init__(self, directory: Path, *extra_args: str) -> None:
        self.directory = directory
        self._extra_args = extra_args  # further redis-server options, e.g. "--maxmemory-policy", "allkeys-lru"
        self.port = free_port()
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            *self._extra_args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = connect(self.url)
        try:
            for _ in range(100):
                try:
                    if await client.ping():
                        return
                except (ConnectionError, OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()  # SIGTERM: redis flushes the append-only file and exits
        await self._proc.wait()
        self._proc = None

    async def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does; nothing is flushed beyond what fsync wrote."""
        if self._proc is None:
            return
        self._proc.kill()
        await self._proc.wait()
        self._proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


async def answers(url: str) -> bool:
    client = connect(url)
    try:
        return bool(await client.ping())
    except (ConnectionError, OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()
