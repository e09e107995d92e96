"""The change worker: takes approved requests from the store and carries them out, one at a time per
worker; every few seconds it also expires, flags and forgets requests (the sweep).

It knows nothing of Slack: what people are told goes through ``ChangeNotices``, which the Slack
transport implements (``handlers.notices.worker.SlackChangeNotices``) and the composition root passes in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Protocol

from bot.domain.approvals import ChangeRequest, RequestState
from bot.domain.errors import KerberosBotError
from bot.services.changes.decisions import Reminder
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Deferral, Execution, HandedOver
from bot.services.changes.queries import KeyPropagation
from bot.tasks import stop_task

log = logging.getLogger(__name__)


class ChangeNotices(Protocol):
    """Where the people following a request hear what became of it (its card and thread, in Slack)."""

    async def carried_out(self, execution: Execution) -> None:
        """Finished: by the bot, or concluded from what an operator did."""
        ...

    async def handed_over(self, handed: HandedOver) -> None:
        """Handed to an operator: who runs it, the command, the time limit."""
        ...

    async def waiting(self, deferral: Deferral) -> None:
        """Approved outside its change window: it runs at ``deferral.runs_at``."""
        ...

    async def expired(self, request: ChangeRequest) -> None: ...

    async def reminded(self, reminder: Reminder) -> None:
        """Approvers reminded of an undecided request (and, at the last reminder, its escalation)."""
        ...

    async def flagged(self, request: ChangeRequest) -> None: ...

    async def key_progress(self, request: ChangeRequest, key_version: int, step: KeyPropagation) -> None: ...

    async def key_followed(self, request: ChangeRequest, key_version: int, result: KeyPropagation) -> None: ...


class ChangeWorker:
    def __init__(
        self,
        changes: ChangeEngine,
        notices: ChangeNotices,
        name: str = "worker-1",
        *,
        follow_interval: timedelta = timedelta(minutes=5),
        follow_for: timedelta = timedelta(hours=8),
        sweep_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._sweep_every = sweep_every.total_seconds()
        self._next_look = 0.0
        self._changes = changes
        self._notices = notices
        self._name = name
        self._follow_interval = follow_interval
        self._follow_for = follow_for
        self._task: asyncio.Task[None] | None = None
        self._followers: set[asyncio.Task[None]] = set()

    async def run_once(self, block_ms: int = 1000) -> bool:
        execution = await self._changes.executor.execute_next(self._name, block_ms)
        if execution is None:
            return False
        if isinstance(execution, Deferral):
            await self._notices.waiting(execution)
            return True
        if isinstance(execution, HandedOver):
            await self._notices.handed_over(execution)
            return True
        await self._reported(execution)
        return True

    async def _reported(self, execution: Execution) -> None:
        """Told on the card and in its thread; a new key is followed until every DC holds it."""
        await self._notices.carried_out(execution)
        if execution.new_key_version is not None:
            follower = asyncio.create_task(self._follow(execution.request, execution.new_key_version))
            self._followers.add(follower)
            follower.add_done_callback(self._followers.discard)

    async def _follow(self, request: ChangeRequest, key_version: int) -> None:
        """Tell the thread when every DC of the domain holds the new key, or which still lag."""

        async def progress(step: KeyPropagation) -> None:
            await self._notices.key_progress(request, key_version, step)

        try:
            result = await self._changes.queries.follow_key(
                request.domain,
                key_version,
                interval=self._follow_interval,
                give_up_after=self._follow_for,
                on_progress=progress,
            )
            await self._notices.key_followed(request, key_version, result)
        except Exception:
            log.exception("following the key of %s failed", request.domain)

    async def expire(self) -> None:
        """Pending requests whose time is up: expired, and their followers told."""
        for request in await self._changes.decisions.expire_due():
            await self._notices.expired(request)

    async def recover(self) -> None:
        """Requests a dead worker left mid-action are flagged and shown as such, never re-run."""
        for request in await self._changes.executor.recover():
            await self._notices.flagged(request)

    async def remind(self) -> None:
        """Reminders that came due, each given out once whichever worker sweeps first."""
        for reminder in await self._changes.decisions.due_reminders():
            await self._notices.reminded(reminder)

    async def look_at_operators(self) -> None:
        """Changes handed to operators: each concluded one (verified, or not) told like a finished change."""
        for look in await self._changes.operators.look():
            succeeded = look.request.state == RequestState.SUCCEEDED
            await self._reported(Execution(look.request, succeeded, look.request.outcome or "", look.new_key_version))

    async def sweep(self) -> None:
        """What every worker does every few seconds: expire, remind, flag the requests of dead workers, forget
        old ones; and, less often, look at the changes operators run."""
        await self.expire()
        await self.remind()
        await self.recover()
        await self._changes.executor.sweep()
        if time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + self._changes.operators.policy.look_every.total_seconds()
            await self.look_at_operators()

    async def _loop(self) -> None:
        next_sweep = 0.0
        failures = 0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    await self.sweep()
                    next_sweep = time.monotonic() + self._sweep_every
                await self.run_once(block_ms=int(min(1.0, self._sweep_every) * 1000))
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                pause = min(10.0, float(2 ** min(failures, 4)) / 2)  # 1 s, 2 s, 4 s, 8 s, 10 s
                if isinstance(exc, KerberosBotError):
                    log.warning("the change worker could not go on (%s); retrying in %g s", exc.user_message, pause)
                else:
                    log.exception("the change worker failed; retrying in %g s", pause)
                await asyncio.sleep(pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"change-{self._name}")

    async def stop(self) -> None:
        for follower in list(self._followers):
            follower.cancel()
        if self._task is not None:
            await stop_task(self._task, f"the change worker {self._name}")
            self._task = None
