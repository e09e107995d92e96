"""Posting replies to a slash command's response URL over one pooled HTTP session.

Bolt's ``respond()`` opens a new HTTP session for every reply; under a burst of commands that
costs more than the command itself, so replies share one session here.
"""

from __future__ import annotations

import logging

import aiohttp

log = logging.getLogger(__name__)


class ResponseUrlPoster:
    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # created lazily: an aiohttp session belongs to the running event loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def post(self, response_url: str, body: bytes) -> None:
        """POST an already serialised JSON payload."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        async with self._client().post(response_url, data=body, headers=headers) as response:
            if response.status >= 300:
                answer = (await response.text())[:200]
                log.warning("response URL answered %s: %s", response.status, answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
