"""Carrying a change out, in memory, by the rules the Redis adapter keeps (``bot/adapters/redis/execution.py``):
the claim with its lease and the domain's lock, the lease kept and proven, the journal, the finish, the
recovery of a dead worker's request, and a change handed to an operator and concluded."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.adapters.memory.store_base import MemoryStoreBase
from bot.domain.approvals import (
    ChangeRequest,
    Claim,
    FinishResult,
    RequestState,
)
from bot.domain.history import Event, HistoryEntry


class MemoryExecutionSteps(MemoryStoreBase):
    """The executor's side of ``MemoryApprovalStore``."""

    async def claim_next(self, consumer: str, lease: timedelta, at: datetime, block_ms: int = 0) -> Claim | None:
        for request_id, until in list(self.waiting.items()):
            if until <= at:
                del self.waiting[request_id]
                self.work.append(request_id)
        waiting, self.work = self.work, []
        claim: Claim | None = None
        for request_id in waiting:
            request = self.requests.get(request_id)
            if claim is not None or request is None:
                if request is not None:
                    self.work.append(request_id)
                continue
            if request.state != RequestState.APPROVED:
                continue
            if request.waited_too_long(at):
                note = (
                    "Approved, but no worker could start it within its time to live; it expired without running. "
                    "Request it again if it is still needed."
                )
                self.requests[request_id] = replace(request, state=RequestState.EXPIRED, outcome=note)
                self._audit(request_id, "expired", None, at, note)
                self.unannounced.append(request_id)  # the next expiry sweep updates its card
                continue
            holder = self.locks.get(request.domain)
            if (
                holder is not None
                and holder[0] != request_id
                and self.requests[holder[0]].state == RequestState.EXECUTING
            ):
                self.work.append(request_id)  # offered again later
                continue
            token = f"token-{next(self._ids)}"
            self.locks[request.domain] = (request_id, token)
            request = self.requests[request_id] = replace(request, state=RequestState.EXECUTING, claimed_by=consumer)
            self.leases[request_id] = (token, self._clock() + lease)
            self._audit(request_id, "claimed", consumer, at)
            claim = Claim(request, token, self._clock() + lease)
        return claim

    async def defer(
        self, claim: Claim, until: datetime, mac: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        request = self.requests.get(claim.request.id)
        lease_of = self.leases.get(claim.request.id)
        if request is None or request.state != RequestState.EXECUTING or lease_of is None or lease_of[0] != claim.token:
            return False
        self._remember(request.id, entry)
        self.requests[request.id] = replace(
            self.requests[request.id],
            state=RequestState.APPROVED,
            waits_until=until,
            waits_mac=mac,
            outcome=note,
            claimed_by=None,
        )
        del self.leases[request.id]
        self._release(request.id, request.domain)
        self.waiting[request.id] = until
        self._audit(request.id, "waiting", None, at, note)
        return True

    async def renew(self, claim: Claim, lease: timedelta, at: datetime) -> Claim | None:
        request = self.requests.get(claim.request.id)
        lease_of = self.leases.get(claim.request.id)
        if request is None or request.state != RequestState.EXECUTING or lease_of is None or lease_of[0] != claim.token:
            return None
        self.leases[request.id] = (claim.token, self._clock() + lease)
        return replace(claim, lease_until=self._clock() + lease)

    async def holds(self, claim: Claim, margin: timedelta, at: datetime) -> bool:
        request = self.requests.get(claim.request.id)
        lease_of = self.leases.get(claim.request.id)
        if request is None or request.state != RequestState.EXECUTING or lease_of is None or lease_of[0] != claim.token:
            return False
        return self.locks.get(request.domain) == (request.id, claim.token) and lease_of[1] - self._clock() >= margin

    async def make_durable(self, claim: Claim) -> str:
        return "in memory"

    async def finish(
        self,
        claim: Claim,
        state: RequestState,
        outcome: str,
        at: datetime,
        *,
        after: str = "",
        after_mac: str = "",
        entry: HistoryEntry | None = None,
    ) -> FinishResult:
        request = self.requests.get(claim.request.id)
        lease_of = self.leases.get(claim.request.id)
        if request is None or lease_of is None or lease_of[0] != claim.token:
            return FinishResult.NOT_OURS
        if request.state == RequestState.ATTENTION:
            self._audit(request.id, "finished_late", None, at, f"{state.value}: {outcome}")
            self._remember(request.id, entry)
            return FinishResult.LATE
        if request.state != RequestState.EXECUTING:
            return FinishResult.NOT_OURS
        self._remember(request.id, entry)
        self.requests[request.id] = replace(
            self.requests[request.id], state=state, outcome=outcome, after=after, after_mac=after_mac
        )
        self._release(request.id, request.domain)
        self._audit(request.id, state.value, None, at, outcome)
        return FinishResult.FINISHED

    async def record_step(self, request_id: str, step: str, at: datetime, *, entry: HistoryEntry | None = None) -> None:
        self._remember(request_id, entry or HistoryEntry(Event.STEP, "", at, step))

    async def executing(self) -> list[ChangeRequest]:
        return [r for r in self.requests.values() if r.state == RequestState.EXECUTING]

    async def with_operator(self) -> list[ChangeRequest]:
        return sorted((r for r in self.requests.values() if r.state == RequestState.WITH_OPERATOR), key=lambda r: r.id)

    async def conclude(
        self,
        request_id: str,
        state: RequestState,
        outcome: str,
        at: datetime,
        *,
        after: str = "",
        after_mac: str = "",
        entry: HistoryEntry | None = None,
    ) -> bool:
        request = self.requests.get(request_id)
        if request is None or request.state != RequestState.WITH_OPERATOR:
            return False
        self._remember(request_id, entry)
        self.requests[request_id] = replace(
            self.requests[request_id], state=state, outcome=outcome, after=after, after_mac=after_mac
        )
        self._audit(request_id, state.value, None, at, outcome)
        return True

    async def hand_over_again(self, request_id: str, history_seen: int, at: datetime, entry: HistoryEntry) -> bool:
        request = self.requests.get(request_id)
        if request is None or request.state != RequestState.WITH_OPERATOR or len(request.history) != history_seen:
            return False
        self._remember(request_id, entry)
        self._audit(request_id, "taken_over", entry.actor, at, entry.detail)
        return True

    async def flag_if_abandoned(
        self, request_id: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        request = self.requests.get(request_id)
        lease_of = self.leases.get(request_id)
        if request is None or request.state != RequestState.EXECUTING or (lease_of and lease_of[1] >= self._clock()):
            return False
        self._remember(request_id, entry)
        self.requests[request_id] = replace(self.requests[request_id], state=RequestState.ATTENTION, outcome=note)
        self._release(request_id, request.domain)
        self._audit(request_id, "attention", None, at, note)
        return True

    async def lock_holder(self, domain: str) -> str | None:
        holder = self.locks.get(domain)
        return holder[0] if holder else None
