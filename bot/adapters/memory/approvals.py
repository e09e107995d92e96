"""The approval store, the sign-in tickets and the audit trail in this process's memory, with the same
rules as the Redis adapters (the contract suites run both): the tests' store, and ``REDIS_URL=memory://``
(one process; nothing survives a restart)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.adapters.memory.execution import MemoryExecutionSteps
from bot.domain.approvals import (
    Action,
    Approval,
    AuditEntry,
    ChangeRequest,
    DecisionResult,
    RequestState,
    Verdict,
)
from bot.domain.history import HistoryEntry
from bot.domain.verification import VerifiedIdentity


class MemoryApprovalStore(MemoryExecutionSteps):
    """Implements ``bot.domain.ports.ApprovalStore``: requests, decisions and reads here, the steps of carrying
    a change out in ``MemoryExecutionSteps`` (``execution.py``), the state in ``MemoryStoreBase``."""

    async def create(self, request: ChangeRequest, *, entry: HistoryEntry | None = None) -> bool | None:
        if request.approved_with is not None:  # filed approved, together with its first rotation
            request = replace(request, state=RequestState.APPROVED, approved_at=request.created_at)
        else:
            request = replace(request, state=RequestState.PENDING)
        self.requests[request.id] = replace(request, history=(), journal=())
        self._remember(request.id, entry)
        self._audit(request.id, "requested", request.requester, request.created_at, request.reason)
        if request.approved_with is not None:
            self._audit(request.id, "approved", None, request.created_at, f"together with {request.approved_with}")
            self.work.append(request.id)
        return None  # in memory: no replica to confirm it

    async def set_card(self, request_id: str, channel: str, card: str) -> None:
        self.requests[request_id] = replace(self.requests[request_id], channel=channel, card=card)

    def _refused(self, request_id: str, actor: str, verdict: str, at: datetime, detail: str = "") -> None:
        """One audit entry per user, request and verdict, as the Redis store writes them."""
        if (request_id, actor, verdict) in self.clicks:
            return
        self.clicks.add((request_id, actor, verdict))
        self._audit(request_id, "refused", actor, at, f"{verdict}: {detail}" if detail else verdict)

    def _checks(
        self, request_id: str, actor: str, at: datetime, origin: str, allowed: frozenset[Action] | None
    ) -> DecisionResult | None:
        request = self.requests.get(request_id)
        if request is None:
            self._refused(request_id, actor, "not_found", at)
            return DecisionResult(Verdict.NOT_FOUND, None)
        count = len(request.approvals)
        if origin and request.origin and origin != request.origin:
            self._refused(request_id, actor, "wrong_origin", at, f"clicked in {origin}, requested in {request.origin}")
            return DecisionResult(Verdict.WRONG_ORIGIN, request, count)
        if request.state != RequestState.PENDING:
            self._refused(request_id, actor, "not_pending", at)
            return DecisionResult(Verdict.NOT_PENDING, request, count)
        if at >= request.expires_at:
            request = self.requests[request_id] = replace(request, state=RequestState.EXPIRED, decided_at=at)
            self._audit(request_id, "expired", None, at)
            return DecisionResult(Verdict.EXPIRED, request, count)
        if allowed is not None and request.action not in allowed:
            self._refused(request_id, actor, "not_allowed", at, f"not in an approver group of {request.action.value}")
            return DecisionResult(Verdict.NOT_ALLOWED, request, count)
        return None

    async def approve(
        self,
        request_id: str,
        approver: str,
        at: datetime,
        identity: VerifiedIdentity | None = None,
        *,
        mac: str = "",
        allowed: frozenset[Action] | None = None,
        verified_actions: frozenset[Action] = frozenset(),
        origin: str = "",
        entry: HistoryEntry | None = None,
    ) -> DecisionResult:
        if (early := self._checks(request_id, approver, at, origin, allowed)) is not None:
            return early
        request = self.requests[request_id]
        count = len(request.approvals)
        # the requester, by the Entra name or (resolved when the request was made) the Entra object id
        requesters_sign_in = identity is not None and (
            identity.upn.lower() == (request.requester_upn or "").lower()
            or (request.requester_oid is not None and identity.object_id.lower() == request.requester_oid.lower())
        )
        if approver == request.requester or requesters_sign_in:
            self._refused(request_id, approver, "self_approval", at, "the requester cannot approve their own request")
            return DecisionResult(Verdict.SELF_APPROVAL, request, count)
        if any(a.approver == approver for a in request.approvals):
            self._refused(request_id, approver, "duplicate", at)
            return DecisionResult(Verdict.DUPLICATE, request, count)
        if identity is None and request.action in verified_actions:
            self._refused(request_id, approver, "verify_first", at)
            return DecisionResult(Verdict.VERIFY_FIRST, request, count)
        if identity is not None:
            earlier = next(
                (a for a in request.approvals if a.identity and a.identity.object_id == identity.object_id), None
            )
            if earlier is not None:
                self._refused(
                    request_id, approver, "same_person", at, f"{identity.upn} already approved as {earlier.approver}"
                )
                return DecisionResult(Verdict.SAME_PERSON, request, count)
        approvals = (*request.approvals, Approval(approver, at, identity, mac))
        extra = (
            {
                "entra_oid": identity.object_id,
                "entra_upn": identity.upn,
                "entra_signed_in_at": identity.signed_in_at.isoformat(),
            }
            if identity
            else {}
        )
        self._audit(request_id, "approved", approver, at, identity.describe() if identity else "", extra)
        self._remember(request_id, entry)
        request = self.requests[request_id]
        if len(approvals) >= request.approvals_required:
            request = self.requests[request_id] = replace(
                request, approvals=approvals, state=RequestState.APPROVED, approved_at=at
            )
            self.work.append(request_id)
            return DecisionResult(Verdict.APPROVED, request, len(approvals))
        request = self.requests[request_id] = replace(request, approvals=approvals)
        return DecisionResult(Verdict.RECORDED, request, len(approvals))

    async def deny(
        self,
        request_id: str,
        approver: str,
        reason: str,
        at: datetime,
        *,
        allowed: frozenset[Action] | None = None,
        origin: str = "",
        entry: HistoryEntry | None = None,
    ) -> DecisionResult:
        if (early := self._checks(request_id, approver, at, origin, allowed)) is not None:
            return early
        self._remember(request_id, entry)
        request = self.requests[request_id] = replace(
            self.requests[request_id],
            state=RequestState.DENIED,
            decided_by=approver,
            decision_reason=reason,
            decided_at=at,
        )
        self._audit(request_id, "denied", approver, at, reason)
        return DecisionResult(Verdict.DENIED, request, len(request.approvals))

    async def cancel(
        self, request_id: str, requester: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        if (early := self._checks(request_id, requester, at, "", None)) is not None:
            return early
        request = self.requests[request_id]
        if request.requester != requester:
            self._refused(request_id, requester, "not_requester", at, "only the requester can cancel")
            return DecisionResult(Verdict.NOT_REQUESTER, request, len(request.approvals))
        self._remember(request_id, entry)
        request = self.requests[request_id] = replace(
            self.requests[request_id], state=RequestState.CANCELLED, decided_by=requester, decided_at=at
        )
        self._audit(request_id, "cancelled", requester, at)
        return DecisionResult(Verdict.CANCELLED, request, len(request.approvals))

    async def note(self, request_id: str, event: str, actor: str | None, detail: str, at: datetime) -> None:
        self._audit(request_id, event, actor, at, detail)

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        self._audit(request_id, "refused", actor, at, why)

    async def expire_due(self, at: datetime) -> list[str]:
        due = [r.id for r in self.requests.values() if r.state == RequestState.PENDING and at >= r.expires_at]
        for request_id in due:
            self.requests[request_id] = replace(self.requests[request_id], state=RequestState.EXPIRED, decided_at=at)
            self._audit(request_id, "expired", None, at)
        due += self.unannounced
        self.unannounced = []
        return due

    async def pending(self, count: int = 200) -> list[ChangeRequest]:
        waiting = [r for r in self.requests.values() if r.state == RequestState.PENDING]
        return sorted(waiting, key=lambda r: r.expires_at)[:count]

    async def mark_reminded(self, request_id: str, number: int) -> bool:
        request = self.requests.get(request_id)
        if request is None or request.state != RequestState.PENDING or request.reminders_sent >= number:
            return False
        self.requests[request_id] = replace(request, reminders_sent=number)
        return True

    async def withdraw(
        self, request_id: str, actor: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        request = self.requests.get(request_id)
        if request is None:
            return DecisionResult(Verdict.NOT_FOUND, None)
        if request.state != RequestState.APPROVED or request.waits_until is None:
            return DecisionResult(Verdict.NOT_PENDING, request, len(request.approvals))
        self._remember(request_id, entry)
        request = self.requests[request_id] = replace(
            self.requests[request_id], state=RequestState.CANCELLED, decided_by=actor, decided_at=at
        )
        self.waiting.pop(request_id, None)
        self._audit(request_id, "cancelled", actor, at, "withdrawn while it waited for its change window")
        return DecisionResult(Verdict.CANCELLED, request, len(request.approvals))

    async def sweep(self, at: datetime, retention: timedelta, audit_retention: timedelta | None = None) -> int:
        cutoff = at - retention
        old = [r.id for r in self.requests.values() if r.created_at < cutoff and r.state.is_final]
        for request_id in old:
            del self.requests[request_id]
        audit_cutoff = at - (audit_retention or retention)
        self.entries = [e for e in self.entries if e.at >= audit_cutoff]
        return len(old)

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]:
        return [e for e in self.entries if request_id is None or e.request_id == request_id][-count:]

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]:
        return sorted(self.requests.values(), key=lambda r: r.created_at, reverse=True)[:count]

    async def for_domain(self, domain: str, count: int = 10) -> Sequence[ChangeRequest]:
        return [r for r in await self.recent(len(self.requests)) if r.domain == domain.lower()][:count]
