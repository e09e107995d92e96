"""The scheduler: the key's lifecycle on a clock (``bot.services.lifecycle``), on one replica at a time.

Every change worker runs one; each tick it tries to hold the lead (``Leadership``: a lease in Redis
that its holder renews). The holder files what is due and runs the watch; the others only try again.
A leader that dies stops renewing, and another takes over within one lease. What it files and
reports is remembered in Redis, so the new leader neither files nor reports anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.approvals import ChangeRequest
from bot.domain.errors import KerberosBotError
from bot.domain.ports import Leadership
from bot.services.lifecycle import Digest, LifecycleService, WatchReport
from bot.tasks import stop_task

log = logging.getLogger(__name__)


class LifecycleNotices(Protocol):
    """Where the scheduler's work is seen: a filed request's card in its channel, the watch's reports."""

    async def filed(self, request: ChangeRequest) -> None: ...

    async def watched(self, report: WatchReport) -> None: ...

    async def digest(self, digest: Digest) -> None: ...


class LifecycleScheduler:
    def __init__(
        self,
        lifecycle: LifecycleService,
        leadership: Leadership,
        notices: LifecycleNotices,
        name: str,
        *,
        clock: Callable[[], datetime],
        tick: timedelta = timedelta(seconds=30),
        lease: timedelta = timedelta(seconds=15),
        watch_every: timedelta = timedelta(minutes=15),
        digest_every: timedelta | None = timedelta(days=7),
    ) -> None:
        self._digest_every = digest_every
        self._lifecycle = lifecycle
        self._leadership = leadership
        self._notices = notices
        self.name = name
        self._clock = clock
        self._tick = tick
        self._lease = lease
        self._watch_every = watch_every
        self._last_watch: datetime | None = None
        self._last_work: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.leading = False

    async def run_once(self) -> bool:
        """One tick: hold the lead, and as the leader do what is due. True when this replica leads."""
        self.leading = await self._leadership.hold(self.name, self._lease)
        if not self.leading:
            self._last_watch = self._last_work = None  # a future lead starts with a look
            return False
        now = self._clock()
        if self._last_work is not None and now - self._last_work < self._tick:
            return True  # the lease renewed; the work is done once a tick
        self._last_work = now
        for request in await self._lifecycle.file_due_rotations():
            await self._tell(self._notices.filed(request), f"the card of {request.id}")
        for request in await self._lifecycle.file_second_rotations():
            await self._tell(self._notices.filed(request), f"the card of {request.id}")
        if self._last_watch is None or now - self._last_watch >= self._watch_every:
            self._last_watch = now
            for report in await self._lifecycle.watch():
                await self._tell(self._notices.watched(report), f"a finding of {report.domain}")
        if self._digest_every is not None:
            for digest in await self._lifecycle.digests(self._digest_every):
                await self._tell(self._notices.digest(digest), f"the digest of {digest.channel}")
        return True

    async def _tell(self, call: Awaitable[None], what: str) -> None:
        try:
            await call
        except Exception:  # Slack down: what was filed stays filed (and shows in /kerberos requests)
            log.exception("posting %s failed", what)

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                await self.run_once()
                failures = 0
                pause = (self._lease / 3).total_seconds()  # the leader renews well within its lease
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                pause = min(30.0, float(2 ** min(failures, 5)))
                if isinstance(exc, KerberosBotError):
                    log.warning("the scheduler could not go on (%s); retrying in %g s", exc.user_message, pause)
                else:
                    log.exception("the scheduler failed; retrying in %g s", pause)
            await asyncio.sleep(pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"scheduler-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task, "the scheduler")
            self._task = None
        if self.leading:
            with contextlib.suppress(Exception):
                await self._leadership.release(self.name)  # the next replica takes over at once
            self.leading = False
