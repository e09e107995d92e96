"""Stopping a worker's task so that stopping itself never hangs."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

TRIES = 5
EACH_SECONDS = 2.0


async def stop_task(task: asyncio.Task[None], what: str, *, each: float = EACH_SECONDS) -> bool:
    """Cancel ``task`` and wait until it has ended; True when it did.

    A cancellation can be lost below the bot: seen here, a change worker's blocking Redis read (redis-py, a read
    under its socket timeout) went on waiting after the worker was cancelled, and the process never stopped. So
    the task is cancelled again every ``each`` seconds, a few times, and then left with a log line rather than
    waited for forever."""
    for attempt in range(TRIES):
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=each)
        if done:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning("%s ended with an error while it stopped: %r", what, error)
            return True
        # the first time is common enough (every stop of the demo's change worker, seen here) to be no warning
        log.log(logging.INFO if attempt == 0 else logging.WARNING, "%s went on after its cancellation; again", what)
    log.error("%s still runs after %d cancellations; leaving it", what, TRIES)
    return False
