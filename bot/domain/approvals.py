"""Change requests and their approval: the states, the rules, and the store's port.

    pending ──approve (enough distinct approvers)──▶ approved ──claim──▶ executing ──▶ succeeded
       │                                                                     └──────▶ failed
       ├──deny──▶ denied      ├──expire──▶ expired      └──cancel (requester)──▶ cancelled

Every transition is made by the store atomically; the rules the store enforces are stated here so
the in-memory fake and the Redis adapter implement the same contract.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.verification import VerifiedIdentity


class Action(enum.Enum):
    ROTATE = "rotate"
    ROTATE_FORCE = "rotate --force"
    REMOVE_TDO = "remove-tdo"
    SETUP = "setup"
    REMOVE_ALL = "remove-all"


class RequestState(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    ATTENTION = "attention"  # a worker died mid-action: a human must look (the journal says what ran)

    @property
    def is_final(self) -> bool:
        return self in {
            RequestState.SUCCEEDED,
            RequestState.FAILED,
            RequestState.DENIED,
            RequestState.EXPIRED,
            RequestState.CANCELLED,
            RequestState.ATTENTION,
        }


@dataclass(frozen=True)
class ActionPolicy:
    """Who may ask for an action and who must agree, from configuration."""

    approvals_required: int = 1
    ttl: timedelta = timedelta(hours=4)
    requester_groups: frozenset[str] = frozenset()  # empty: anyone in the channel may request
    approver_groups: frozenset[str] = frozenset()
    verified_approval: bool = False  # an approval counts only with a fresh Entra sign-in (MFA) behind it


@dataclass(frozen=True)
class Approval:
    approver: str
    at: datetime
    identity: VerifiedIdentity | None = None  # the Entra sign-in behind it, for verified approvals


@dataclass(frozen=True)
class ChangeRequest:
    id: str
    action: Action
    domain: str
    requester: str
    reason: str
    plan: tuple[str, ...]  # the exact changes, shown before anyone approves
    created_at: datetime
    expires_at: datetime
    approvals_required: int
    state: RequestState = RequestState.PENDING
    approvals: tuple[Approval, ...] = ()
    decided_by: str | None = None  # who denied or cancelled
    decision_reason: str | None = None
    decided_at: datetime | None = None
    channel: str | None = None
    message_ts: str | None = None  # the Slack card, updated in place
    outcome: str | None = None  # what execution reported
    expected_key_version: int | None = None  # KeyVersion when requested; the worker re-checks it
    journal: tuple[str, ...] = ()  # the execution's steps, in order, each "<time> <step>"
    top_level_names: tuple[str, ...] = ()  # setup: -TopLevelNames


class Verdict(enum.Enum):
    """What a click did; the store answers with one of these, never by raising."""

    RECORDED = "recorded"  # counted, more approvals needed
    APPROVED = "approved"  # this approval reached the threshold: the request goes to the worker
    DENIED = "denied"
    CANCELLED = "cancelled"
    SELF_APPROVAL = "self_approval"
    DUPLICATE = "duplicate"  # this approver already approved
    NOT_PENDING = "not_pending"  # decided, executing or finished already
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    NOT_REQUESTER = "not_requester"  # only the requester may cancel
    NOT_ALLOWED = "not_allowed"  # not in an approver group: refused, audited, nothing changed
    VERIFY_FIRST = "verify_first"  # the action needs a verified Entra sign-in first; nothing recorded yet


@dataclass(frozen=True)
class DecisionResult:
    verdict: Verdict
    request: ChangeRequest | None
    approvals: int = 0


@dataclass(frozen=True)
class AuditEntry:
    id: str
    request_id: str
    event: str  # requested, approved, denied, expired, cancelled, refused, claimed, succeeded, failed
    actor: str | None
    at: datetime
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class GroupDirectory(Protocol):
    """Slack user groups: who may request and who may approve."""

    async def members(self, group_id: str) -> frozenset[str]: ...


class DomainLocks(Protocol):
    """One dangerous action per domain at a time; a lock expires if its holder dies."""

    async def acquire(self, domain: str, ttl: timedelta) -> str | None: ...

    async def release(self, domain: str, token: str) -> None: ...

    async def held(self, domain: str) -> bool: ...


class ApprovalStore(Protocol):
    """Keeps change requests; every method is one atomic transition."""

    async def create(self, request: ChangeRequest) -> None: ...

    async def get(self, request_id: str) -> ChangeRequest | None: ...

    async def set_message(self, request_id: str, channel: str, message_ts: str) -> None:
        """Where the request's card is, so it can be updated in place."""
        ...

    async def approve(
        self, request_id: str, approver: str, at: datetime, identity: VerifiedIdentity | None = None
    ) -> DecisionResult:
        """Count an approval; ``identity`` (verified approvals) is kept with it and in the audit trail."""
        ...

    async def deny(self, request_id: str, approver: str, reason: str, at: datetime) -> DecisionResult: ...

    async def cancel(self, request_id: str, requester: str, at: datetime) -> DecisionResult: ...

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        """Record a click from someone not allowed; changes nothing else."""
        ...

    async def expire_due(self, at: datetime) -> list[str]:
        """Move pending requests whose time is up to expired; returns their ids."""
        ...

    async def next_approved(self, consumer: str, block_ms: int = 0) -> ChangeRequest | None:
        """Claim the next approved request for execution (approved -> executing), at most once."""
        ...

    async def finish(self, request_id: str, succeeded: bool, outcome: str, at: datetime) -> None: ...

    async def record_step(self, request_id: str, step: str, at: datetime) -> None:
        """Append to the execution journal (written before and after each step that changes anything)."""
        ...

    async def executing(self) -> list[ChangeRequest]:
        """Requests a worker claimed and has not finished."""
        ...

    async def flag_attention(self, request_id: str, note: str, at: datetime) -> bool:
        """executing -> attention, once; False if the request was not executing."""
        ...

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]: ...

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]: ...
