"""Command workers: the follow-up work of acknowledged slash commands, in processes of their own.

The process that answers Slack only parses, acknowledges and queues; a worker takes the queued
commands, runs each one's work (reads, rendering) and posts the replies to its response URL. So the
acknowledgement of a command never waits behind the work of earlier ones (Slack allows 3 s), and a
burst of identical commands still shares one read (``SingleFlight``) inside the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.domain.ports import CommandQueue, DeferredCommand
from bot.observability.logs import REQUEST_ID, set_user
from bot.tasks import stop_task

log = logging.getLogger(__name__)

# Slack's response URLs take replies for 30 minutes; a command older than this is dropped, not answered late
MAX_AGE = timedelta(minutes=25)
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0)  # seconds, after consecutive failures to reach the queue


class CommandWorker:
    def __init__(
        self,
        work: Callable[[DeferredCommand], Awaitable[None]],
        queue: CommandQueue,
        name: str,
        *,
        concurrency: int = 64,
        block_ms: int = 1000,
    ) -> None:
        self._work_on = work  # the Slack transport's: run the command, post its replies
        self._queue = queue
        self._name = name
        self._concurrency = concurrency
        self._block_ms = block_ms
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Take what is queued (waiting up to ``block_ms``) and start its work; returns how many started.
        With every slot busy it first waits for one command to finish."""
        if self._busy() >= self._concurrency:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        free = self._concurrency - self._busy()
        commands = await self._queue.take(self._name, count=free, block_ms=self._block_ms)
        for command in commands:
            task = asyncio.create_task(self._work(command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(commands)

    def _busy(self) -> int:
        return sum(not task.done() for task in self._tasks)

    async def _work(self, command: DeferredCommand) -> None:
        # the acknowledging request's id and user on every line this command logs, here and in work_on
        REQUEST_ID.set(command.request_id)
        set_user(command.user_id)
        age = datetime.now(UTC) - command.queued_at
        if age > MAX_AGE:
            log.warning("dropped a command queued %.0f s ago: its response URL has expired", age.total_seconds())
            return
        try:
            await self._work_on(command)
        except Exception:  # the work answers the user itself; this is a last guard for the loop
            log.exception("a queued command failed")

    async def _forever(self) -> None:
        failures = 0
        while True:
            try:
                await self.run_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or restarting: wait longer each time, up to 10 s
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("taking commands from the queue failed (%s); trying again in %g s", exc, delay)
                await asyncio.sleep(delay)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._forever())

    async def drain(self) -> None:
        """Wait for the work already started."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        if self._loop is not None:
            await stop_task(self._loop, "the command worker")
            self._loop = None
        await self.drain()
