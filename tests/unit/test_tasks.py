"""Stopping a worker never hangs: a cancellation lost below the bot (seen with a blocking Redis read) is sent
again, and a task that never ends is left with a log line instead of being waited for forever."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.tasks import TRIES, stop_task


async def swallows_cancellations(times: int, ended: asyncio.Event) -> None:
    """Like a library that catches a cancellation and goes on waiting, ``times`` times."""
    swallowed = 0
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed += 1
            if swallowed > times:
                ended.set()
                raise


async def test_a_task_that_swallowed_its_cancellation_is_cancelled_again_and_ends() -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(swallows_cancellations(1, ended))
    await asyncio.sleep(0)
    # one cancellation, as the workers' stop used to send, leaves it running
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done
    assert await stop_task(task, "a worker", each=0.05)
    assert task.cancelled() and ended.is_set()


async def test_a_task_that_never_ends_is_left_with_a_log_line_not_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(swallows_cancellations(TRIES, ended))
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="bot.tasks"):
        assert not await stop_task(task, "a stubborn worker", each=0.01)
    assert f"a stubborn worker still runs after {TRIES} cancellations" in caplog.text
    task.cancel()  # the last one it swallows no more
    await asyncio.wait({task}, timeout=1)
    assert task.done()


async def test_an_error_while_stopping_is_logged_and_the_task_counts_as_ended(caplog: pytest.LogCaptureFixture) -> None:
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("could not close its connection") from None

    task = asyncio.create_task(fails_when_cancelled())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="bot.tasks"):
        assert await stop_task(task, "a worker", each=0.05)
    assert "a worker ended with an error while it stopped" in caplog.text
