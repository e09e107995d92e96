"""Posting replies to a slash command's response URL over one pooled HTTP session.

Bolt's ``respond()`` opens a new HTTP session for every reply; under a burst of commands that
costs more than the command itself, so replies share one session here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)


def _retry_after(value: str | None, *, default: float) -> float:
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:
        return default


SLACK_RESPONSE_ORIGIN = "https://hooks.slack.com"  # where Slack's response URLs point


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def response_origins(api_url: str) -> tuple[str, ...]:
    """Where replies may go: Slack's response URLs, and the configured Slack base when it is not Slack's
    own (the sandbox's stand-in answers both)."""
    extra = _origin(api_url)
    return (SLACK_RESPONSE_ORIGIN,) if extra.endswith("slack.com") else (SLACK_RESPONSE_ORIGIN, extra)


class ResponseUrlPoster:
    def __init__(
        self,
        timeout: float = 10.0,
        *,
        attempts: int = 4,
        max_wait: float = 30.0,
        origins: Iterable[str] = (SLACK_RESPONSE_ORIGIN,),
    ) -> None:
        self._origins = frozenset(o.lower().rstrip("/") for o in origins)
        self._attempts = attempts
        self._max_wait = max_wait
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # created lazily: an aiohttp session belongs to the running event loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def post(self, response_url: str, body: bytes) -> None:
        """POST an already serialised JSON payload; a 429 or a 5xx is tried again (after ``Retry-After``,
        at most ``max_wait`` seconds each time), so a burst of replies loses none."""
        if _origin(response_url) not in self._origins:
            # never a request from the bot to an address someone else chose
            log.error("refused to post a reply to a response URL outside Slack's (%s)", _origin(response_url)[:80])
            return
        headers = {"Content-Type": "application/json; charset=utf-8"}
        for attempt in range(1, self._attempts + 1):
            async with self._client().post(response_url, data=body, headers=headers) as response:
                if response.status < 300:
                    return
                answer = (await response.text())[:200]
                again = response.status == 429 or response.status >= 500
                if not again or attempt == self._attempts:
                    log.warning("response URL answered %s: %s", response.status, answer)
                    return
                wait = _retry_after(response.headers.get("Retry-After"), default=float(attempt))
            log.info("response URL answered %s; trying again in %.1f s", response.status, wait)
            await asyncio.sleep(min(wait, self._max_wait))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
