"""A token bucket per person (or per request) in the shared store, and the refusal when it is empty: one
place for the status reads, the requests, the clicks and the nudges."""

from __future__ import annotations

from collections.abc import Callable

from bot.domain.ports import RateLimiter
from bot.services.changes.errors import RateLimited


async def within(
    limiter: RateLimiter | None,
    bucket: str,
    *,
    capacity: int,
    per_second: float,
    refusal: Callable[[float], str],
) -> None:
    """Take one token from ``bucket``; ``RateLimited`` saying ``refusal(seconds to wait)`` when there is none.
    Without a limiter (no shared store) there are no limits."""
    if limiter is None:
        return
    wait = await limiter.take(bucket, capacity=capacity, per_second=per_second)
    if wait > 0:
        raise RateLimited(refusal(wait))
