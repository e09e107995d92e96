"""The command workers ``kerberos-bot serve`` starts beside itself, restarted when one exits.

Each runs ``kerberos-bot worker --exit-with-parent`` with the same environment, so it reads the same
configuration and Redis and writes its metrics where the serving process exposes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, after consecutive quick exits
STOP_GRACE = 10.0  # seconds a worker gets to finish its replies before it is killed


def worker_name(index: int) -> str:
    """Unique among replicas and restarts: the consumer name in Redis, and in the logs."""
    return f"{socket.gethostname()}-{os.getpid()}-{index}"


class CommandWorkerProcesses:
    def __init__(self, count: int, command: Sequence[str] | None = None) -> None:
        self._count = count
        self._command = list(command or (sys.executable, "-m", "bot", "worker", "--exit-with-parent", "--nice", "19"))
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def running(self) -> int:
        return sum(p.returncode is None for p in self._procs.values())

    async def start(self) -> None:
        self._supervisors = [asyncio.create_task(self._supervise(i)) for i in range(1, self._count + 1)]

    async def _supervise(self, index: int) -> None:
        quick_exits = 0
        while not self._stopping:
            started = asyncio.get_running_loop().time()
            proc = await asyncio.create_subprocess_exec(*self._command, "--name", worker_name(index))
            self._procs[index] = proc
            code = await proc.wait()
            if self._stopping:
                return
            lived = asyncio.get_running_loop().time() - started
            quick_exits = quick_exits + 1 if lived < 60 else 0
            delay = RESTART_DELAYS[min(quick_exits, len(RESTART_DELAYS)) - 1] if quick_exits else 0.0
            log.error("command worker %d (pid %d) exited with %s; restarting it in %g s", index, proc.pid, code, delay)
            await asyncio.sleep(delay)

    async def readiness(self) -> dict[str, str]:
        if self.running < self._count:
            return {"command workers": f"{self.running} of {self._count} running (see the log for why they exited)"}
        return {}

    async def stop(self) -> None:
        self._stopping = True
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self._procs.values():
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
