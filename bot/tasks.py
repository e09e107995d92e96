"""Stopping a task of the bot's own (a worker, a lease's heartbeat, a token's renewal) so that stopping it never
hangs, and never swallows a cancellation of the one who stops it."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

TRIES = 5
EACH_SECONDS = 2.0


async def stop_task(task: asyncio.Task[None], what: str, *, each: float = EACH_SECONDS) -> bool:
    """Cancel ``task`` and wait until it has ended; True when it did.

    A cancellation can be lost below the bot. Python 3.11's ``asyncio.wait_for`` returns its inner result when
    the inner future finished just as the cancellation came, and swallows the cancellation (fixed in 3.12);
    redis-py sends every command under ``wait_for`` (the write's drain, which finishes at once). Seen here at
    every stop of the demo's change worker: it went on to its next blocking read, and the process never
    exited. So the task is cancelled again every ``each`` seconds, a few times, and then left with a log line
    rather than waited for forever."""
    for attempt in range(TRIES):
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=each)
        if done:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning("%s ended with an error while it stopped: %r", what, error)
            return True
        # the first time is common enough (a command under way in redis-py when the stop came) to be no warning
        log.log(logging.INFO if attempt == 0 else logging.WARNING, "%s went on after its cancellation; again", what)
    log.error("%s still runs after %d cancellations; leaving it", what, TRIES)
    return False
