"""A Redis that fails over, on loopback, started and stopped by whoever needs one (the failover tests and
bench/failover.py): a primary, a replica and three sentinels (Debian's redis-sentinel) watching them,
each with its own port and directory; optionally a relay that makes the replica lag."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

from bot.adapters.redis.client import connect
from kerberos_sandbox.redis_server import PrivateRedis, free_port

PRIMARY_NAME = "kbot"


class Sentinels:
    """``start()``: the primary, its replica, three sentinels (quorum 2, the primary down after 500 ms)."""

    def __init__(self, directory: Path, *, replica_lag: float = 0.0) -> None:
        self.replica_lag = replica_lag  # seconds the replica's copy runs behind (a relay between them)
        self.relay: DelayingRelay | None = None
        (directory / "primary").mkdir()
        (directory / "replica").mkdir()
        self.primary = PrivateRedis(directory / "primary")
        self.replica = PrivateRedis(directory / "replica", "--replicaof", "127.0.0.1", "0")  # the port, at start
        self._directory = directory
        self.ports = [free_port() for _ in range(3)]
        self._procs: list[asyncio.subprocess.Process] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{PRIMARY_NAME}/0"

    async def start(self) -> None:
        await self.primary.start()
        follows = self.primary.port
        if self.replica_lag:
            self.relay = DelayingRelay(self.primary.port, self.replica_lag)
            await self.relay.start()
            follows = self.relay.port
        self.replica._extra_args = ("--replicaof", "127.0.0.1", str(follows))
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
        if self.relay is not None:
            await self.relay.stop()


class DelayingRelay:
    """A TCP relay on loopback that hands the primary's bytes to the replica ``delay`` late (a replica that
    lags); what it still holds when the primary's side closes is dropped, as a lagging replica loses what
    had not reached it when its primary died."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _relay(self, replica_reader: asyncio.StreamReader, replica_writer: asyncio.StreamWriter) -> None:
        try:
            primary_reader, primary_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            replica_writer.close()
            return
        late: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def to_primary() -> None:
            while data := await replica_reader.read(65536):
                primary_writer.write(data)
                await primary_writer.drain()

        async def from_primary() -> None:
            while data := await primary_reader.read(65536):
                await late.put((loop.time() + self.delay, data))

        async def to_replica() -> None:
            while True:
                due, data = await late.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                replica_writer.write(data)
                await replica_writer.drain()

        pumps = [asyncio.create_task(p()) for p in (to_primary, from_primary, to_replica)]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps[:2], return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, OSError):
            pass
        finally:
            for pump in pumps:  # whatever is still held is dropped
                pump.cancel()
                self._tasks.discard(pump)
            for writer in (replica_writer, primary_writer):
                writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()


class LocalCluster:
    """A Redis Cluster on loopback: three primaries and three replicas (redis-server processes, each with
    its own port and directory), put together with ``redis-cli --cluster create``. Started and stopped
    without an event loop, so a session-wide test fixture can hold it."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.ports = _cluster_ports(6)
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        for port in self.ports:
            node = self._directory / f"node-{port}"
            node.mkdir()
            options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(node), "--save", ""]
            options += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            options += ["--cluster-node-timeout", "2000"]
            self._procs.append(
                subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in self.ports:
            self._until(partial(_answers, cli, port, ("PING",), "PONG"), f"redis-server on {port} did not start")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for port in self.ports:
            self._until(partial(_answers, cli, port, ("CLUSTER", "INFO"), "cluster_state:ok"), "no cluster")
        # every node agrees on who serves which slot (a node that does not yet would answer MOVED)
        check = ("--cluster", "check", f"127.0.0.1:{self.ports[0]}")
        self._until(partial(_answers, cli, self.ports[0], check, "All nodes agree"), "the nodes never agreed")
        # and every replica has synced with its primary (a WAIT before that counts no replica)
        for port in self.ports:
            if _answers(cli, port, ("ROLE",), "slave"):
                synced = partial(_answers, cli, port, ("INFO", "replication"), "master_link_status:up")
                self._until(synced, f"the replica on {port} never synced with its primary", seconds=60.0)

    @staticmethod
    def _until(ready: Callable[[], bool], problem: str, seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(problem)

    def replica_of(self, primary_port: int) -> subprocess.Popen[bytes]:
        """The redis-server process that replicates the primary on ``primary_port`` (to pause it, say)."""
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        for port, proc in zip(self.ports, self._procs, strict=True):
            role = subprocess.run([cli, "-p", str(port), "ROLE"], capture_output=True, text=True, check=False).stdout
            lines = role.split()
            if lines[:1] == ["slave"] and len(lines) > 2 and lines[2] == str(primary_port):
                return proc
        raise LookupError(f"no replica of the primary on port {primary_port}")

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.wait()


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (the port plus 10000) is free and valid too."""
    found: list[int] = []
    while len(found) < count:
        port = random.randint(20000, 45000)
        if port in found or port + 10000 in found:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        found.append(port)
    return found


def _answers(cli: str, port: int, command: tuple[str, ...], expected: str) -> bool:
    arguments = list(command) if command[0].startswith("--") else ["-p", str(port), *command]
    done = subprocess.run([cli, *arguments], capture_output=True, text=True, check=False)
    return expected in done.stdout
