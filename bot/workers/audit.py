"""The audit forwarder's loop in the change workers: a round every few seconds (the forwarder itself does
nothing unless its replica leads), with a growing pause while the store or the sinks fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.domain.errors import KerberosBotError
from bot.services.audit import AuditForwarder
from bot.tasks import stop_task

log = logging.getLogger(__name__)


class AuditForwarding:
    def __init__(self, forwarder: AuditForwarder, every: timedelta = timedelta(seconds=10)) -> None:
        self._forwarder = forwarder
        self._every = every.total_seconds()
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                results = await self._forwarder.run_once()
                failures = failures + 1 if any(r.problem for r in results) else 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if isinstance(exc, KerberosBotError):
                    log.warning("audit forwarding could not go on: %s", exc.user_message)
                else:
                    log.exception("audit forwarding failed")
            await asyncio.sleep(min(300.0, self._every * 2 ** min(failures, 5)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-forwarding")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task, "audit forwarding")
            self._task = None
        with contextlib.suppress(Exception):
            await self._forwarder.close()
