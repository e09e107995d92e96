"""An in-memory ApprovalStore with the same rules as the Redis one (the contract tests run both)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.approvals import Approval, AuditEntry, ChangeRequest, DecisionResult, RequestState, Verdict
from bot.domain.verification import VerifiedIdentity


class FakeApprovalStore:
    def __init__(self) -> None:
        self.requests: dict[str, ChangeRequest] = {}
        self.work: asyncio.Queue[str] = asyncio.Queue()
        self.entries: list[AuditEntry] = []
        self._ids = itertools.count(1)

    def _audit(
        self,
        request_id: str,
        event: str,
        actor: str | None,
        at: datetime,
        detail: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.entries.append(AuditEntry(str(next(self._ids)), request_id, event, actor, at, detail, extra or {}))

    async def create(self, request: ChangeRequest) -> None:
        self.requests[request.id] = request
        self._audit(request.id, "requested", request.requester, request.created_at, request.reason)

    async def get(self, request_id: str) -> ChangeRequest | None:
        return self.requests.get(request_id)

    async def set_message(self, request_id: str, channel: str, message_ts: str) -> None:
        self.requests[request_id] = replace(self.requests[request_id], channel=channel, message_ts=message_ts)

    def _pending(self, request_id: str, at: datetime) -> DecisionResult | None:
        request = self.requests.get(request_id)
        if request is None:
            return DecisionResult(Verdict.NOT_FOUND, None)
        if request.state != RequestState.PENDING:
            return DecisionResult(Verdict.NOT_PENDING, request, len(request.approvals))
        if at >= request.expires_at:
            request = self.requests[request_id] = replace(request, state=RequestState.EXPIRED, decided_at=at)
            self._audit(request_id, "expired", None, at)
            return DecisionResult(Verdict.EXPIRED, request, len(request.approvals))
        return None

    async def approve(
        self, request_id: str, approver: str, at: datetime, identity: VerifiedIdentity | None = None
    ) -> DecisionResult:
        if (early := self._pending(request_id, at)) is not None:
            return early
        request = self.requests[request_id]
        if approver == request.requester:
            self._audit(request_id, "refused", approver, at, "the requester cannot approve their own request")
            return DecisionResult(Verdict.SELF_APPROVAL, request, len(request.approvals))
        if any(a.approver == approver for a in request.approvals):
            return DecisionResult(Verdict.DUPLICATE, request, len(request.approvals))
        approvals = (*request.approvals, Approval(approver, at, identity))
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
        if len(approvals) >= request.approvals_required:
            request = self.requests[request_id] = replace(request, approvals=approvals, state=RequestState.APPROVED)
            self.work.put_nowait(request_id)
            return DecisionResult(Verdict.APPROVED, request, len(approvals))
        request = self.requests[request_id] = replace(request, approvals=approvals)
        return DecisionResult(Verdict.RECORDED, request, len(approvals))

    async def deny(self, request_id: str, approver: str, reason: str, at: datetime) -> DecisionResult:
        if (early := self._pending(request_id, at)) is not None:
            return early
        request = self.requests[request_id] = replace(
            self.requests[request_id],
            state=RequestState.DENIED,
            decided_by=approver,
            decision_reason=reason,
            decided_at=at,
        )
        self._audit(request_id, "denied", approver, at, reason)
        return DecisionResult(Verdict.DENIED, request, len(request.approvals))

    async def cancel(self, request_id: str, requester: str, at: datetime) -> DecisionResult:
        if (early := self._pending(request_id, at)) is not None:
            return early
        request = self.requests[request_id]
        if request.requester != requester:
            self._audit(request_id, "refused", requester, at, "only the requester can cancel")
            return DecisionResult(Verdict.NOT_REQUESTER, request, len(request.approvals))
        request = self.requests[request_id] = replace(
            request, state=RequestState.CANCELLED, decided_by=requester, decided_at=at
        )
        self._audit(request_id, "cancelled", requester, at)
        return DecisionResult(Verdict.CANCELLED, request, len(request.approvals))

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        self._audit(request_id, "refused", actor, at, why)

    async def expire_due(self, at: datetime) -> list[str]:
        due = [r.id for r in self.requests.values() if r.state == RequestState.PENDING and at >= r.expires_at]
        for request_id in due:
            self._pending(request_id, at)
        return due

    async def next_approved(self, consumer: str, block_ms: int = 0) -> ChangeRequest | None:
        while not self.work.empty():
            request = self.requests[self.work.get_nowait()]
            if request.state == RequestState.APPROVED:
                request = self.requests[request.id] = replace(request, state=RequestState.EXECUTING)
                self._audit(request.id, "claimed", consumer, request.created_at)
                return request
        return None

    async def finish(self, request_id: str, succeeded: bool, outcome: str, at: datetime) -> None:
        request = self.requests[request_id]
        if request.state != RequestState.EXECUTING:
            return
        state = RequestState.SUCCEEDED if succeeded else RequestState.FAILED
        self.requests[request_id] = replace(request, state=state, outcome=outcome)
        self._audit(request_id, state.value, None, at, outcome)

    async def record_step(self, request_id: str, step: str, at: datetime) -> None:
        request = self.requests[request_id]
        self.requests[request_id] = replace(request, journal=(*request.journal, f"{at.isoformat()} {step}"))

    async def executing(self) -> list[ChangeRequest]:
        return [r for r in self.requests.values() if r.state == RequestState.EXECUTING]

    async def flag_attention(self, request_id: str, note: str, at: datetime) -> bool:
        request = self.requests[request_id]
        if request.state != RequestState.EXECUTING:
            return False
        self.requests[request_id] = replace(request, state=RequestState.ATTENTION, outcome=note)
        self._audit(request_id, "attention", None, at, note)
        return True

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]:
        return [e for e in self.entries if request_id is None or e.request_id == request_id][-count:]

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]:
        return sorted(self.requests.values(), key=lambda r: r.created_at, reverse=True)[:count]


class FakeVerifications:
    """An in-memory VerificationStore; ``clock`` decides when a remembered verification lapses."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.kept: dict[str, tuple[VerifiedIdentity, datetime]] = {}

    async def remember(self, chat_user: str, identity: VerifiedIdentity, ttl: timedelta) -> None:
        self.kept[chat_user] = (identity, self._clock() + ttl)

    async def recall(self, chat_user: str) -> VerifiedIdentity | None:
        found = self.kept.get(chat_user)
        if found is None or self._clock() >= found[1]:
            return None
        return found[0]
