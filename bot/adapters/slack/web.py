"""The bot's Web API client: Slack's limits respected, so that no reply and no card update is lost.

- A 429 is retried after its ``Retry-After`` (fractions honoured, each wait capped), a few times.
- A 500 or 503 and a broken connection are retried too, with slack_sdk's back-off.
- Posts to one channel are paced: Slack allows about one message a second per channel (short bursts
  pass), so a burst of thread lines waits its turn instead of being refused. With a shared store the pace
  is kept across every replica of the bot (``SharedChannelPacing``): two replicas would otherwise post
  twice as fast between them and lean on Slack's refusals.
- While the bot runs, its calls share one HTTP session (``keep_connections``): slack_sdk otherwise opens
  a session, and so a TCP connection and a TLS handshake, for every call, and closes it after.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain.errors import KerberosBotError
from bot.domain.ports import RateLimiter

log = logging.getLogger(__name__)

# the method Slack limits per channel ("special" tier: about 1 a second per channel, short bursts pass)
PACED_METHODS = frozenset({"chat.postMessage"})


class RetryAfterHandler(AsyncRateLimitErrorRetryHandler):
    """Slack's 429: wait what ``Retry-After`` says (seconds, fractions honoured), at most ``max_wait``."""

    def __init__(self, max_retry_count: int = 3, max_wait: float = 60.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._max_wait = max_wait

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("a rate-limit retry without a response")
        header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            wait = float(header[0] if isinstance(header, list) else header) if header else 1.0
        except ValueError:
            wait = 1.0
        state.next_attempt_requested = True
        await asyncio.sleep(min(max(wait, 0.0), self._max_wait) + random.random() * 0.1)
        state.increment_current_attempt()


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        RetryAfterHandler(),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ]


class ChannelPacing:
    """A token bucket per channel: ``burst`` posts at once, then ``per_second``."""

    def __init__(
        self,
        per_second: float = 1.0,
        burst: int = 4,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("pace at least one post, faster than never")
        self._rate = per_second
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, when counted)
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> float:
        """Wait until ``channel`` may take one more post; returns how long it waited."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:  # one waiter at a time per channel keeps the order of its posts
            return await self._take(channel)

    async def _take(self, channel: str) -> float:
        """One post's turn from this process's own bucket for ``channel``."""
        now = self._clock()
        tokens, then = self._buckets.get(channel, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        waited = 0.0
        if tokens < 1.0:
            waited = (1.0 - tokens) / self._rate
            await self._sleep(waited)
            tokens = 1.0
            now += waited
        self._buckets[channel] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # forget the quietest channels rather than grow without end
            for quiet in sorted(self._buckets, key=lambda c: self._buckets[c][1])[:5_000]:
                self._buckets.pop(quiet, None)
                self._locks.pop(quiet, None)
        return waited


class SharedChannelPacing(ChannelPacing):
    """The same pace kept by every replica together: one bucket per channel in the store they share (the
    ``RateLimiter`` port). Where the store cannot answer, this process's own bucket paces its posts, as
    ``ChannelPacing`` does, and Slack's refusals (retried after their ``Retry-After``) pace the rest. The
    buckets refill by the store's clock, so replicas whose clocks drift apart still keep one pace."""

    TRIES = 60  # a turn not had after this many waits is taken anyway: Slack's refusal is retried

    def __init__(
        self,
        limiter: RateLimiter,
        per_second: float = 1.0,
        burst: int = 4,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(per_second, burst, clock=clock, sleep=sleep)
        self._limiter = limiter
        self._store_answers = True  # said in the log when it stops and when it answers again

    async def _take(self, channel: str) -> float:
        waited = 0.0
        for _ in range(self.TRIES):
            try:
                wait = await self._limiter.take(
                    f"slack-post:{channel}", capacity=int(self._burst), per_second=self._rate
                )
            except KerberosBotError as exc:
                if self._store_answers:
                    log.warning("posts paced by this process alone: %s", exc.user_message)
                    self._store_answers = False
                return waited + await super()._take(channel)
            if not self._store_answers:
                log.info("posts paced across the replicas again")
                self._store_answers = True
            if wait <= 0:
                return waited
            await self._sleep(wait)
            waited += wait
        return waited


class PacedWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` whose posts to a channel are paced (``ChannelPacing``)."""

    def __init__(self, *args: Any, pacing: ChannelPacing | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pacing = pacing or ChannelPacing()
        self._kept: aiohttp.ClientSession | None = None

    def keep_connections(self) -> None:
        """From now on (on the running event loop) every call goes over one session's kept-alive connections,
        until ``close_connections``."""
        if self._kept is None or self._kept.closed:
            self._kept = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self.session = self._kept

    async def close_connections(self) -> None:
        if self._kept is not None:
            self.session = None  # a call after this opens a session of its own again, as slack_sdk does
            await self._kept.close()
            self._kept = None

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> AsyncSlackResponse:
        if api_method in PACED_METHODS:
            body = json or (data if isinstance(data, dict) else None) or params or {}
            channel = body.get("channel")
            if isinstance(channel, str) and channel:
                await self.pacing.wait(channel)
        return await super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )


def slack_web_client(token: str, base_url: str, *, pacing: ChannelPacing | None = None) -> PacedWebClient:
    """The client every part of the bot uses: retries on 429, 5xx and broken connections; paced posts."""
    return PacedWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers(), pacing=pacing)
