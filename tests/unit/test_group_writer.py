"""Group commit: what arrives while a write is on the wire goes out together in the next one; every caller
hears its own result or its batch's failure, and a caller that gives up harms no one else."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.adapters.redis.batching import GroupWriter
from tests.support.waiting import until


class Wire:
    """A write the test releases: the batches it was given, in order."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the wire broke")
        return [item * 10 for item in items]


async def test_one_turns_callers_share_a_write_and_the_next_arrivals_share_the_next() -> None:
    wire = Wire()
    writer = GroupWriter(wire.write)
    first = [asyncio.create_task(writer.submit(n)) for n in range(3)]
    await until(lambda: len(wire.batches) == 1)
    later = [asyncio.create_task(writer.submit(n)) for n in range(3, 8)]
    await asyncio.sleep(0.01)
    assert wire.batches == [[0, 1, 2]]  # one write at a time: the later ones wait for it
    wire.release.set()
    assert await asyncio.gather(*first, *later) == [n * 10 for n in range(8)]
    assert wire.batches == [[0, 1, 2], [3, 4, 5, 6, 7]]


async def test_a_lone_caller_is_written_at_once() -> None:
    wire = Wire()
    wire.release.set()
    assert await GroupWriter(wire.write).submit(4) == 40
    assert wire.batches == [[4]]


async def test_a_failed_write_fails_its_own_batch_only() -> None:
    wire = Wire()
    writer = GroupWriter(wire.write)
    doomed = [asyncio.create_task(writer.submit(n)) for n in (1, 2)]
    await until(lambda: len(wire.batches) == 1)
    fine = asyncio.create_task(writer.submit(3))
    wire.fail_next = True
    wire.release.set()
    for task in doomed:
        with pytest.raises(ConnectionError):
            await task
    assert await fine == 30


async def test_a_caller_that_gives_up_leaves_the_others_their_answers() -> None:
    wire = Wire()
    writer = GroupWriter(wire.write)
    quitter = asyncio.create_task(writer.submit(1))
    stayer = asyncio.create_task(writer.submit(2))
    await until(lambda: len(wire.batches) == 1)
    quitter.cancel()
    wire.release.set()
    assert await stayer == 20
    with pytest.raises(asyncio.CancelledError):
        await quitter


async def test_a_batch_holds_at_most_so_many() -> None:
    wire = Wire()
    wire.release.set()
    writer = GroupWriter(wire.write, most=4)
    assert await asyncio.gather(*(writer.submit(n) for n in range(10))) == [n * 10 for n in range(10)]
    assert [len(batch) for batch in wire.batches] == [4, 4, 2]


def test_a_writer_whose_loop_stopped_mid_write_does_not_hold_up_the_next_loop() -> None:
    # one adapter serves several event loops in tests (and a process that restarts its loop): the first loop
    # is closed while its write is on the wire, so that writer never ends
    stuck = Wire()
    writer = GroupWriter(stuck.write)
    first_loop = asyncio.new_event_loop()
    abandoned = first_loop.create_task(writer.submit(1))
    first_loop.run_until_complete(asyncio.sleep(0.01))
    first_loop.close()
    assert stuck.batches == [[1]] and not abandoned.done()

    async def next_loop() -> int:
        stuck.release = asyncio.Event()
        stuck.release.set()
        return await asyncio.wait_for(writer.submit(2), timeout=5)

    assert asyncio.run(next_loop()) == 20
    assert stuck.batches == [[1], [2]]  # the first loop's item went with its loop
