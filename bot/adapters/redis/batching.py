"""Group commit for the writes every Slack request makes (the replay check, the command queue's entry).

A caller's item goes out in one pipeline with every item that arrived while the previous pipeline was
on the wire: a lone request pays one round trip, and a burst of fifty pays a few rather than fifty
(each pipeline costs the event loop a connection checkout, a timeout and a parse, whatever its size).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MOST_PER_PIPELINE = 256

# writers whose event loop stopped before they finished: kept referenced so that collecting them never logs
# "Task was destroyed but it is pending" (one per stopped loop: a test's, or a restarted process's)
_ABANDONED: list[asyncio.Task[None]] = []


class GroupWriter(Generic[Item, Result]):
    """``await submit(item)`` returns ``write``'s result for that item, or raises what ``write`` raised for
    its batch. One batch is written at a time, at most ``most`` items each. One event loop at a time uses it
    (a process's loop; a test's, then the next test's), never two loops at once from two threads."""

    def __init__(
        self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *, most: int = MOST_PER_PIPELINE
    ) -> None:
        self._write = write
        self._most = most
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._writer.get_loop() is not loop:
            # the writer's loop stopped mid-write and never ran it to its end: its callers went with that loop,
            # and waiting on it here would wait forever
            _ABANDONED.append(self._writer)
            self._writer = None
            self._waiting = [(waiting, answer) for waiting, answer in self._waiting if answer.get_loop() is loop]
        answer: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        # a caller that is cancelled leaves its item in the batch (written or not, no one else waits on it)
        return await answer

    async def _write_all(self) -> None:
        try:
            # one more turn of the loop before writing: the callers of this turn and the next share the first batch
            await asyncio.sleep(0)
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as exc:  # also a cancellation at shutdown: no caller is left waiting
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for (_, answer), result in zip(batch, results, strict=True):
                        if not answer.done():
                            answer.set_result(result)
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None
            # left only when the writer itself was cancelled (shutdown): their callers stop too
            for _, answer in self._waiting:
                answer.cancel()
            self._waiting = []
