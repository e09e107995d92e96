"""Waiting on a condition, not for a time: the test goes on the moment the condition holds, and fails
with what it waited for when it never does."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable


async def until(condition: Callable[[], object], timeout: float = 10.0, *, what: str = "the condition") -> None:
    """Check ``condition`` (cheap, in-process state that nothing signals) every 10 ms until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    for _ in itertools.count():
        if condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g} s")
        await asyncio.sleep(0.01)
