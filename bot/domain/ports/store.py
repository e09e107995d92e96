"""The change requests: kept one atomic transition at a time, and heard by watchers as they change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.domain.approvals import (
    Action,
    AuditEntry,
    ChangeRequest,
    Claim,
    DecisionResult,
    FinishResult,
    RequestChange,
    RequestState,
)
from bot.domain.history import HistoryEntry
from bot.domain.verification import VerifiedIdentity

if TYPE_CHECKING:  # the card model names the handover, whose effect names SetServerOptions (ports.world)
    from bot.domain.card import RequestCard


class RequestWatcher(Protocol):
    """Hears every change of a request's state (its requester's direct messages, in Slack); a watcher that
    fails changes nothing about the request."""

    async def request_changed(self, card: RequestCard, change: RequestChange) -> None:
        """``card``: the request as every surface shows it, after the change."""
        ...


class ApprovalStore(Protocol):
    """Keeps change requests; every method is one atomic transition.

    ``entry``: the transition as the bot signed it (``bot.domain.history``), appended to the request's
    history in the same atomic step, and only when the transition is made (a refused click appends
    nothing). Without one nothing is appended, and the record no longer agrees with its history: the
    engine always gives one; the contract suites, testing the store alone, need not."""

    async def create(self, request: ChangeRequest, *, entry: HistoryEntry | None = None) -> bool | None:
        """Record a new request, pending; returns whether the replicas that must hold it before anyone is told
        confirmed it (None: none is asked; ``DecisionResult.kept`` says the same of a click). One with
        ``approved_with`` (a second rotation approved together with its first) is recorded approved and offered
        to the workers at once; the store does not judge that, the worker's re-validation does, from the first's
        signed approvals."""
        ...

    async def get(self, request_id: str) -> ChangeRequest | None: ...

    async def set_card(self, request_id: str, channel: str, card: str) -> None:
        """Where the request's card is, so it can be updated in place."""
        ...

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
        """Count an approval, deciding from the stored request alone: ``allowed`` are the actions the
        approver may approve (None: any), ``verified_actions`` those whose approvals need ``identity``
        (else VERIFY_FIRST), ``origin`` where the click came from (refused when the request was made
        elsewhere; empty: not checked). One person counts once: the same Slack user, the same Entra
        user from a second Slack account (SAME_PERSON), and the requester's own Entra account are
        refused. Every refused click is audited once per user, request and verdict."""
        ...

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
    ) -> DecisionResult: ...

    async def cancel(
        self, request_id: str, requester: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult: ...

    async def note(self, request_id: str, event: str, actor: str | None, detail: str, at: datetime) -> None:
        """An entry in the audit trail that changes nothing else (a reminder, a nudge, an escalation)."""
        ...

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        """Record a click from someone not allowed; changes nothing else."""
        ...

    async def expire_due(self, at: datetime) -> list[str]:
        """Move pending requests whose time is up to expired; returns their ids, and those of approved
        requests a claim expired because they waited for a worker longer than their TTL."""
        ...

    async def claim_next(self, consumer: str, lease: timedelta, at: datetime, block_ms: int = 0) -> Claim | None:
        """Claim the next approved request (approved -> executing) with its domain's lock, at most once.

        A request whose domain another executing request holds stays approved and is offered again
        later; one that waited for a worker longer than its TTL expires instead of running; one that
        waits for its change window is offered from its ``waits_until`` on."""
        ...

    async def pending(self, count: int = 200) -> list[ChangeRequest]:
        """Requests waiting for approvals, soonest to expire first."""
        ...

    async def mark_reminded(self, request_id: str, number: int) -> bool:
        """Note that reminder ``number`` of a pending request went out; False when it (or a later one) had
        already, or the request is no longer pending: so each reminder goes out once across every worker."""
        ...

    async def defer(
        self, claim: Claim, until: datetime, mac: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        """executing -> approved again, waiting until ``until`` (its change window), the domain's lock
        released; ``note`` (what the card says) kept as its outcome so far. False when not this claim's."""
        ...

    async def withdraw(
        self, request_id: str, actor: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        """An approved request still waiting for its change window -> cancelled (NOT_PENDING when it is not
        waiting any more). Who may do it is the service's to decide; the store checks the state."""
        ...

    async def renew(self, claim: Claim, lease: timedelta, at: datetime) -> Claim | None:
        """Extend the lease; ``None`` when it is no longer this claim's (lapsed and flagged, or finished).
        A lease is measured by the store's own clock (Redis's ``TIME``), never by ``at``: workers whose
        clocks differ agree on when it lapses (so in ``claim_next``, ``flag_if_abandoned`` and ``holds``)."""
        ...

    async def holds(self, claim: Claim, margin: timedelta, at: datetime) -> bool:
        """The claim still holds at ``at``: the request is executing under this claim's token, the domain's
        lock is its own, and the lease runs for at least ``margin`` more (read right before the module call)."""
        ...

    async def make_durable(self, claim: Claim) -> str:
        """How durable ``claim`` is: as the store could make it, waiting with the claim itself (Redis: WAITAOF or
        WAIT sent on the connection that wrote it, which is what they count); returns how, for the journal.
        Raises ``StoreUnavailable`` when the store could not confirm it."""
        ...

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
        """executing -> succeeded | failed | attention | with_operator, and the domain's lock released, by the
        claim's holder; ``after``: the world the change left (with the bot's MAC), which a second rotation is
        bound to. with_operator: handed to an operator (``entry`` records the handover)."""
        ...

    async def with_operator(self) -> list[ChangeRequest]:
        """Requests handed to an operator, not yet concluded."""
        ...

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
        """with_operator -> succeeded | failed | attention: the verdict on what the operator did, once (any
        replica may look; False when it is no longer with its operator)."""
        ...

    async def hand_over_again(self, request_id: str, history_seen: int, at: datetime, entry: HistoryEntry) -> bool:
        """with_operator -> with_operator, handed to another operator (``entry``: the new, signed handover), only
        while its history is as long as the caller saw it (no look concluded it, nobody took it over, its operator
        said nothing since); False otherwise."""
        ...

    async def record_step(self, request_id: str, step: str, at: datetime, *, entry: HistoryEntry | None = None) -> None:
        """Append to the execution journal (written before and after each step that changes anything): the
        request's history (``entry``, or an unsigned step when none is given)."""
        ...

    async def executing(self) -> list[ChangeRequest]:
        """Requests a worker claimed and has not finished."""
        ...

    async def flag_if_abandoned(
        self, request_id: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        """executing -> attention when the claim's lease has lapsed (its worker died), and its lock freed;
        False if the request is not executing or its lease is alive."""
        ...

    async def lock_holder(self, domain: str) -> str | None:
        """The id of the request whose claim holds the domain's lock, if any."""
        ...

    async def sweep(self, at: datetime, retention: timedelta, audit_retention: timedelta | None = None) -> int:
        """Forget finished requests older than ``retention`` and audit entries older than
        ``audit_retention`` (default: the same); returns how many requests."""
        ...

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]: ...

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]: ...

    async def for_domain(self, domain: str, count: int = 10) -> Sequence[ChangeRequest]:
        """The domain's most recent requests (within retention), newest first."""
        ...
