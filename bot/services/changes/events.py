"""Who hears every change of every request's state (the requesters' direct messages, the home pages)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.domain.approvals import ChangeRequest, RequestChange
from bot.domain.card import RequestCard
from bot.domain.ports import RequestWatcher

log = logging.getLogger(__name__)


class Watchers:
    """Told of a request's change, each watcher gets its card model (``card_of``: ``Queries.card``)."""

    def __init__(self, card_of: Callable[[ChangeRequest], RequestCard]) -> None:
        self._card_of = card_of
        self._watchers: list[RequestWatcher] = []
        self._telling = 0  # watchers being told something now (see drain)

    def add(self, watcher: RequestWatcher) -> None:
        self._watchers.append(watcher)

    async def tell(self, request: ChangeRequest, change: RequestChange) -> None:
        self._telling += 1
        try:
            card = self._card_of(request) if self._watchers else None
            for watcher in self._watchers:
                assert card is not None
                try:
                    await watcher.request_changed(card, change)
                except Exception:  # a watcher's failure is its own: the request goes on as it was
                    log.warning("telling a watcher that %s is %s failed", request.id, change.kind.value, exc_info=True)
        finally:
            self._telling -= 1

    async def drain(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout`` seconds) until no watcher is being told anything: before the bot closes
        its connections, so that a direct message or a home page in flight still reads what it needs."""
        deadline = time.monotonic() + timeout
        # polled, not an asyncio.Event: the engine outlives an event loop in the tests, an Event binds to one
        while self._telling and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return not self._telling
