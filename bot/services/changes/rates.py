"""How fast a person may ask, click and nudge (a token bucket per person in the shared store)."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.ports import RateLimiter
from bot.services.buckets import within
from bot.services.changes.limits import RateLimits


class Rates:
    def __init__(self, limiter: RateLimiter | None, limits: RateLimits) -> None:
        self._limiter = limiter  # None: no shared store, no limits (the buckets refill by the store's clock)
        self.limits = limits

    async def _within(self, bucket: str, capacity: int, per_second: float, rate: str) -> None:
        def refusal(wait: float) -> str:
            return (
                f"You are going faster than kerberos-bot allows ({rate}); nothing was recorded. "
                f"Try again in {max(1, round(wait))} s."
            )

        await within(self._limiter, bucket, capacity=capacity, per_second=per_second, refusal=refusal)

    async def request(self, user: str) -> None:
        per_hour = self.limits.requests_per_hour
        await self._within(f"request:{user}", per_hour, per_hour / 3600, f"{per_hour} requests an hour")

    async def click(self, user: str) -> None:
        per_minute = self.limits.clicks_per_minute
        await self._within(f"click:{user}", per_minute, per_minute / 60, f"{per_minute} clicks a minute")

    async def nudge(self, request_id: str, every: timedelta) -> None:
        """Once per ``every`` for a request, whoever asks."""

        def refusal(wait: float) -> str:
            return (
                f"The approvers of `{request_id}` were nudged less than {every.total_seconds() / 60:g} minutes "
                f"ago; try again in {max(1, round(wait / 60))} min."
            )

        rate = 1 / every.total_seconds()
        await within(self._limiter, f"nudge:{request_id}", capacity=1, per_second=rate, refusal=refusal)
