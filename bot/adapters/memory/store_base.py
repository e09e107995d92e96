"""The in-memory approval store's groundwork: its state (requests, the work list, locks, leases, the audit
trail) and its own clock, the history an entry appends to, reading a request back."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.domain.approvals import (
    AuditEntry,
    ChangeRequest,
)
from bot.domain.history import Event, HistoryEntry


class MemoryStoreBase:
    """What every part of ``MemoryApprovalStore`` stands on."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock  # the store's own clock: it alone decides when a lease lapses (Redis: TIME)
        self.requests: dict[str, ChangeRequest] = {}
        self.work: list[str] = []  # approved request ids, in order
        self.waiting: dict[str, datetime] = {}  # approved, deferred to their change window: id -> from when
        self.locks: dict[str, tuple[str, str]] = {}  # domain -> (request id, claim token)
        self.leases: dict[str, tuple[str, datetime]] = {}  # request id -> (claim token, lease until)
        self.clicks: set[tuple[str, str, str]] = set()  # (request, user, verdict) already audited
        self.unannounced: list[str] = []  # approved requests that expired waiting for a worker
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

    def _remember(self, request_id: str, entry: HistoryEntry | None) -> None:
        """Append the transition's signed entry to the request's history, with the journal its steps make."""
        if entry is None:
            return
        request = self.requests[request_id]
        journal = (
            (*request.journal, f"{entry.at.isoformat()} {entry.detail}")
            if entry.event == Event.STEP
            else request.journal
        )
        self.requests[request_id] = replace(request, history=(*request.history, entry), journal=journal)

    async def get(self, request_id: str) -> ChangeRequest | None:
        return self.requests.get(request_id)

    def _release(self, request_id: str, domain: str) -> None:
        if self.locks.get(domain, ("", ""))[0] == request_id:
            del self.locks[domain]
