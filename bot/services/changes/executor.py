"""Carrying out approved requests, at most once whatever happens: the claim (the request and its domain's
lock in one atomic step, with a lease), the lease kept while the change runs, re-validation against the
stored, signed request right before the one module call, the journal around that call, the outcome, and
the recovery of a request whose worker died.

    claim ─▶ journal "claimed", "claim durable" ─▶ re-validate ─▶ change window? ─▶ defer (back to wait)
      └─▶ carry out (the action's own function) ─▶ re-validate ─▶ journal ─▶ module call ─▶ journal ─▶ finish
    a lapsed lease ─▶ recover: flagged "needs attention", with what the journal says ran; never run again
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.actions.base import ActionContext, Outcome, Run
from bot.actions.registry import ACTION_SPECS
from bot.domain.approvals import (
    KEY_ROTATIONS,
    ChangeRequest,
    Claim,
    FinishResult,
    RequestChange,
    RequestChangeKind,
    RequestState,
)
from bot.domain.errors import KerberosBotError
from bot.domain.hints import hint
from bot.domain.history import Event
from bot.domain.integrity import Signer
from bot.domain.model import world_of
from bot.domain.operators import ExecutionMode, Handover
from bot.domain.ports import ApprovalStore
from bot.domain.windows import ChangeWindows
from bot.observability.logs import REQUEST_ID, SLACK_USER
from bot.observability.metrics import Metrics
from bot.services.changes.authority import Authority
from bot.services.changes.errors import ForgedRecord, LeaseLost, RefusedAtExecution
from bot.services.changes.events import Watchers
from bot.services.changes.holds import Holds
from bot.services.changes.inventory import inventory
from bot.services.changes.limits import ExecutionLimits
from bot.services.changes.operators import Operators
from bot.services.changes.revalidation import Revalidation
from bot.tasks import stop_task

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Execution:
    request: ChangeRequest
    succeeded: bool
    outcome: str
    new_key_version: int | None = None  # after a rotation: what every DC should come to hold


@dataclass(frozen=True)
class HandedOver:
    """A claimed request handed to an operator (operator-executes mode): the bot calls no module; it looks at AD
    and Entra until the operator's change shows, or the time limit passes (``Operators``)."""

    request: ChangeRequest
    handover: Handover


@dataclass(frozen=True)
class Deferral:
    """A claimed request approved outside its domain's change window: back in the store, waiting until
    ``runs_at`` (nothing was changed)."""

    request: ChangeRequest
    runs_at: datetime
    windows: ChangeWindows


class Executor:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        context: ActionContext,
        authority: Authority,
        holds: Holds,
        signer: Signer,
        watchers: Watchers,
        clock: Callable[[], datetime],
        limits: ExecutionLimits,
        metrics: Metrics,
        operators: Operators | None = None,
    ) -> None:
        self._store = store
        self._context = context
        self._authority = authority
        self._holds = holds
        self._signer = signer
        self._watchers = watchers
        self._clock = clock
        self.limits = limits
        self._metrics = metrics
        self._operators = operators
        self._checks = Revalidation(
            store=store, context=context, authority=authority, holds=holds, signer=signer, clock=clock
        )
        self._module_called: set[str] = set()  # requests whose module call started in this process

    async def execute_next(self, consumer: str, block_ms: int = 0) -> Execution | Deferral | HandedOver | None:
        """Claim one approved request and carry it out; at most once, whatever happens. One approved outside
        its domain's change window goes back to wait for it (``Deferral``), where the policy says so."""
        claim = await self._store.claim_next(consumer, self.limits.lease, self._clock(), block_ms)
        if claim is None:
            return None
        request = claim.request
        REQUEST_ID.set(f"change-{request.id}")  # the worker's log lines carry the change request
        SLACK_USER.set(request.requester)
        heartbeat = asyncio.create_task(self._keep_lease(claim), name=f"lease-{request.id}")
        started = time.perf_counter()
        try:
            done_or_deferred = await self._execute(claim)
        finally:
            # `await heartbeat` under suppress(CancelledError) also swallowed a cancellation of this worker that
            # came while it waited; and the heartbeat's own may be lost in a renewal (stop_task says how)
            await stop_task(heartbeat, f"the lease heartbeat of request {request.id}")
            self._module_called.discard(request.id)
        if isinstance(done_or_deferred, Deferral):
            log.info("request %s waits for the change window of %s", request.id, request.domain)
            runs_at = done_or_deferred.windows.local(done_or_deferred.runs_at)
            await self._watchers.tell(
                done_or_deferred.request, RequestChange(RequestChangeKind.WAITING, detail=runs_at)
            )
            return done_or_deferred
        if isinstance(done_or_deferred, Handover):
            return await self._handed_over(claim, done_or_deferred)
        state, outcome = done_or_deferred
        word = state.value
        self._metrics.action_seconds.labels(request.action.value, word).observe(time.perf_counter() - started)
        self._metrics.requests_finished.labels(request.action.value, word).inc()
        log.info("request %s (%s %s) %s", request.id, request.action.value, request.domain, word)
        await self._step(request, f"finished: {word}")
        new_version, after = None, ""
        if state == RequestState.SUCCEEDED and request.action in KEY_ROTATIONS:
            left = await self._context.directory(request.domain).read_kerberos_objects()
            new_version = left.server.key.version if left.server and left.server.key else None
            after = world_of(left)  # signed: its second rotation must find exactly this world
        after_mac = self._signer.after_mac(request.id, after) if after else ""
        at = self._clock()
        entry = self._signer.entry(request.id, _FINISHED[state], "", at, outcome)
        finished = await self._store.finish(claim, state, outcome, at, after=after, after_mac=after_mac, entry=entry)
        if finished == FinishResult.LATE:
            log.error("request %s finished (%s) after its lease lapsed and it was flagged", request.id, word)
        done = await self._store.get(request.id)
        finished_as = {
            RequestState.SUCCEEDED: RequestChangeKind.SUCCEEDED,
            RequestState.FAILED: RequestChangeKind.FAILED,
        }
        kind = finished_as.get(state, RequestChangeKind.ATTENTION)
        await self._watchers.tell(done or request, RequestChange(kind, detail=outcome))
        return Execution(done or request, state == RequestState.SUCCEEDED, outcome, new_version)

    async def _execute(self, claim: Claim) -> tuple[RequestState, str] | Deferral | Handover:
        request = claim.request
        claimed_at = self._clock()
        try:
            await self._step(request, f"claimed by {request.claimed_by or '?'}")
            await self._step(request, f"claim durable: {await self._store.make_durable(claim)}")
            await self._checks.revalidate(request)
            await self._step(request, "re-validated against the stored policy")
            if (deferral := await self._defer_to_window(claim)) is not None:
                return deferral
        except ForgedRecord as exc:
            log.error("request %s: %s", request.id, exc.user_message)
            return RequestState.ATTENTION, f"Refused: {exc.user_message}"
        except KerberosBotError as exc:
            return RequestState.FAILED, f"Not started: {exc.user_message}"
        if self._operators is not None and self._operators.policy.execution(request.domain, request.action) == (
            ExecutionMode.OPERATOR
        ):  # operator-executes mode: handed over instead of the module call
            try:
                return await self._hand_over(claim)
            except ForgedRecord as exc:
                log.error("request %s: %s", request.id, exc.user_message)
                return RequestState.ATTENTION, f"Refused: {exc.user_message}"
            except KerberosBotError as exc:
                return RequestState.FAILED, f"Not handed over: {exc.user_message}"
        timeout = self.limits.change_timeout
        try:
            result = await asyncio.wait_for(self._carry_out(claim), timeout.total_seconds())
            state, outcome = (RequestState.SUCCEEDED if result.succeeded else RequestState.FAILED), result.text
        except ForgedRecord as exc:
            log.error("request %s: %s", request.id, exc.user_message)
            state, outcome = RequestState.ATTENTION, f"Refused: {exc.user_message}"
        except LeaseLost as exc:
            log.error("request %s: %s", request.id, exc.user_message)
            state, outcome = RequestState.ATTENTION, f"Stopped: {exc.user_message}."
        except TimeoutError:
            minutes = timeout.total_seconds() / 60
            state, outcome = (
                RequestState.ATTENTION,
                (
                    f"Needs attention: the change did not finish within {minutes:g} minutes and was stopped; "
                    "what it changed is not known."
                ),
            )
        except KerberosBotError as exc:
            state, outcome = RequestState.FAILED, f"Failed: {exc}"
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("executing request %s failed (ref %s)", request.id, ref)
            state, outcome = (
                RequestState.FAILED,
                f"Failed with an unexpected error (reference {ref}); see the bot's log.",
            )
        if state != RequestState.SUCCEEDED and request.id in self._module_called:
            found = await inventory(self._context, request, self.limits.inventory_timeout)
            await self._step(request, f"found after the failure: {found}")
            outcome = f"{outcome} {found}"
        if state == RequestState.SUCCEEDED and (overridden := self._holds.overridden(request, claimed_at)):
            outcome = f"{outcome} {overridden}"
        return state, outcome

    async def _carry_out(self, claim: Claim) -> Outcome:
        request = claim.request
        spec = ACTION_SPECS.get(request.action)
        if spec is None:  # an action added to the enum without a spec must never fall through to another
            raise LookupError(f"no carry-out for action {request.action!r}")

        async def note(step: str) -> None:
            await self._step(request, step)

        return await spec.carry_out(self._context, Run(request, _Journalled(self, claim), note))

    async def _hand_over(self, claim: Claim) -> Handover:
        """Operator-executes mode: instead of the module call, the change is handed to an operator, fenced as that
        call is (re-validated, the claim still held, the world as approved, no other change in the domain with
        its operator). The handover (who, until when, the exact command, the effect to look for) is signed."""
        request = claim.request
        spec = ACTION_SPECS[request.action]
        assert self._operators is not None
        if spec.hand_over is None:
            raise RefusedAtExecution("this action changes nothing: there is nothing for an operator to run")
        await self._fence(claim)
        operator, upn = await self._operators.pick(request)
        handing = await spec.hand_over(self._context, request, upn)
        now = self._clock()
        return Handover(operator, upn, now, now + self._operators.policy.time_limit, handing.command, handing.effect)

    async def _handed_over(self, claim: Claim, handover: Handover) -> HandedOver | Execution:
        request = claim.request
        await self._step(request, f"handed over to an operator, until {handover.until.isoformat()}")
        entry = self._signer.entry(request.id, Event.HANDED_OVER, handover.operator, handover.at, handover.encoded())
        finished = await self._store.finish(claim, RequestState.WITH_OPERATOR, "", handover.at, entry=entry)
        if finished != FinishResult.FINISHED:  # the claim was lost (and flagged) before the handover was recorded
            log.error("request %s lost its claim before its handover was recorded", request.id)
            done = await self._store.get(request.id) or request
            return Execution(done, False, done.outcome or "Its claim was lost before the handover; nothing was run.")
        log.info("request %s (%s %s) handed to an operator", request.id, request.action.value, request.domain)
        handed = await self._store.get(request.id) or request
        await self._watchers.tell(handed, RequestChange(RequestChangeKind.HANDED_OVER, actor=handover.operator))
        return HandedOver(handed, handover)

    async def _fence(self, claim: Claim) -> None:
        """Right before anything changes: the stored request re-validated, the claim still held (a worker that
        lost its lease, stopped or cut off longer than it and flagged by another, must not act), the world as
        approved, and no other change of the domain in an operator's hands."""
        request = claim.request
        await self._checks.revalidate(request)
        if not await self._store.holds(claim, self.limits.renew_every, self._clock()):
            raise LeaseLost(
                "this worker lost its claim on the request before the change (its lease lapsed, and another worker "
                "may have flagged it and freed the domain); nothing was changed"
            )
        await self._checks.same_world(request)
        for other in await self._store.with_operator():
            if other.domain == request.domain and other.id != request.id:
                raise RefusedAtExecution(
                    f"the change {other.id} of this domain is with its operator; nothing was changed. Request it "
                    "again once that one is concluded"
                )

    async def _defer_to_window(self, claim: Claim) -> Deferral | None:
        """Outside the domain's change window: back to the store until it opens (policy ``wait``), or
        refused (``refuse``); break-glass is not held. None: it runs now."""
        request = claim.request
        now = self._clock()
        opening = self._holds.opening_to_wait_for(request, now)
        if opening is None:
            return None
        windows = self._holds.windows_of(request.domain)
        note = (
            f"Approved outside the change window ({windows.describe()}): it waits, and runs when the window opens, "
            f"{windows.local(opening)}."
        )
        await self._step(request, f"waits for the change window: runs at {opening.isoformat()}")
        waits = self._signer.entry(request.id, Event.WAITS, "", now, opening.isoformat())
        mac = self._signer.wait_mac(request.id, opening)
        if not await self._store.defer(claim, opening, mac, note, now, entry=waits):
            log.error("request %s could not be put back to wait for its window (its claim was lost)", request.id)
        return Deferral(await self._store.get(request.id) or request, opening, windows)

    async def _keep_lease(self, claim: Claim) -> None:
        """Renew the lease while the change runs, never past its timeout (so a hung change loses the lock)."""
        limits = self.limits
        stop_at = time.monotonic() + (limits.change_timeout + limits.lease).total_seconds()
        while time.monotonic() < stop_at:
            await asyncio.sleep(limits.renew_every.total_seconds())
            try:
                renewed = await self._store.renew(claim, limits.lease, self._clock())
            except KerberosBotError:
                log.warning("could not renew the lease of request %s; trying again", claim.request.id)
                continue
            if renewed is None:
                log.error("request %s lost its lease: it may be flagged while still running", claim.request.id)
                return
            claim = renewed

    async def _module_call(self, claim: Claim, cmdlet: str, call: Awaitable[T]) -> T:
        """Journal around the one step that changes AD and Entra, so a crash inside it is visible later.
        The request is re-validated right before (nothing that changed in the store since the claim counts),
        and the claim must still hold: a worker that lost its lease (stopped or cut off longer than it, and
        flagged by another worker, which freed the domain) must not act."""
        request = claim.request
        try:
            await self._fence(claim)
        except BaseException:
            if asyncio.iscoroutine(call):
                call.close()  # never awaited: no "coroutine was never awaited" warning
            raise
        await self._step(request, f"module call started: {cmdlet}")
        self._module_called.add(request.id)
        result = await call
        await self._step(request, f"module call returned: {cmdlet}")
        return result

    async def _step(self, request: ChangeRequest, step: str) -> None:
        at = self._clock()
        entry = self._signer.entry(request.id, Event.STEP, "", at, step)
        await self._store.record_step(request.id, step, at, entry=entry)

    async def recover(self) -> list[ChangeRequest]:
        """Flag requests whose worker died mid-action (their lease lapsed); never run them again.
        Every change worker calls this on each sweep, so a crash is flagged within a lease."""
        flagged = []
        for request in await self._store.executing():
            steps = [line.split(" ", 1)[1] for line in request.journal]
            started = any(s.startswith("module call started") for s in steps)
            returned = any(s.startswith("module call returned") for s in steps)
            if started and not returned:
                advice = (
                    "The worker stopped inside the module call: AD may be changed and Entra not (or the other way "
                    f"round). Run {hint(f'status {request.domain}')} and, if the key versions differ, a forced "
                    "rotation."
                )
            elif returned:
                advice = (
                    f"The change was made; it was not verified. Run {hint(f'status {request.domain}')} to check it."
                )
            else:
                advice = "The worker stopped before changing anything. Request it again if it is still needed."
            note = f"Needs attention: {advice} Steps recorded: {'; '.join(steps) or 'none'}."
            at = self._clock()
            flag = self._signer.entry(request.id, Event.ATTENTION, "", at, note)
            if await self._store.flag_if_abandoned(request.id, note, at, entry=flag):
                log.warning("request %s: its worker stopped renewing its lease; flagged", request.id)
                flagged.append(done := await self._store.get(request.id) or request)
                await self._watchers.tell(done, RequestChange(RequestChangeKind.ATTENTION, detail=note))
        return flagged

    async def sweep(self) -> int:
        """Forget finished requests and audit entries older than their retention."""
        limits = self.limits
        return await self._store.sweep(self._clock(), limits.request_retention, limits.audit_retention)


_FINISHED = {
    RequestState.SUCCEEDED: Event.SUCCEEDED,
    RequestState.FAILED: Event.FAILED,
    RequestState.ATTENTION: Event.ATTENTION,
}


class _Journalled:
    """The request's one module call, as ``Run.call``: re-validated, fenced and journalled by the executor."""

    def __init__(self, executor: Executor, claim: Claim) -> None:
        self._executor = executor
        self._claim = claim

    def __call__(self, cmdlet: str, call: Awaitable[T]) -> Awaitable[T]:
        return self._executor._module_call(self._claim, cmdlet, call)
