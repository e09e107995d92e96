"""A Redis that fails over, on loopback, started and stopped by the tests: a primary, a replica and three
sentinels (Debian's redis-sentinel) watching them, each with its own port and directory."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import cast

from kerberos_sandbox.redis_server import PrivateRedis, _free_port

from bot.adapters.redis.client import connect

PRIMARY_NAME = "kbot"


class Sentinels:
    """``start()``: the primary, its replica, three sentinels (quorum 2, the primary down after 500 ms)."""

    def __init__(self, directory: Path) -> None:
        (directory / "primary").mkdir()
        (directory / "replica").mkdir()
        self.primary = PrivateRedis(directory / "primary")
        self.replica = PrivateRedis(directory / "replica", "--replicaof", "127.0.0.1", "0")  # the port, at start
        self._directory = directory
        self.ports = [_free_port() for _ in range(3)]
        self._procs: list[asyncio.subprocess.Process] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{PRIMARY_NAME}/0"

    async def start(self) -> None:
        await self.primary.start()
        self.replica._extra_args = ("--replicaof", "127.0.0.1", str(self.primary.port))
        await self.replica.start()
        await self._until_the_replica_is_in_step()
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        for number, port in enumerate(self.ports):
            conf = self._directory / f"sentinel-{number}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self._directory}\n"
                f"sentinel monitor {PRIMARY_NAME} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {PRIMARY_NAME} 500\n"
                f"sentinel failover-timeout {PRIMARY_NAME} 3000\n"
                f"sentinel parallel-syncs {PRIMARY_NAME} 1\n",
                encoding="utf-8",
            )
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    binary, str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                )
            )
        await self._until_sentinels_see_the_replica()

    async def _until_the_replica_is_in_step(self) -> None:
        client = connect(self.replica.url)
        try:
            for _ in range(200):
                if (await client.info("replication")).get("master_link_status") == "up":
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("the replica never caught up with the primary")
        finally:
            await client.aclose()

    async def _until_sentinels_see_the_replica(self) -> None:
        for port in self.ports:
            client = connect(f"redis://127.0.0.1:{port}/0")
            try:
                for _ in range(200):
                    try:
                        replicas = await client.sentinel_slaves(PRIMARY_NAME)
                        if replicas:
                            break
                    except (ConnectionError, OSError, Exception):  # not listening yet
                        pass
                    await asyncio.sleep(0.05)
                else:
                    raise RuntimeError(f"sentinel on {port} never saw the replica")
            finally:
                await client.aclose()

    async def primary_port(self) -> int:
        """The port of the primary the sentinels name now."""
        client = connect(f"redis://127.0.0.1:{self.ports[0]}/0")
        try:
            address = cast(tuple[str, int], await client.sentinel_get_master_addr_by_name(PRIMARY_NAME))
            return int(address[1])
        finally:
            await client.aclose()

    async def stop(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        await self.replica.stop()
        await self.primary.stop()
