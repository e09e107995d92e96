"""What people decide on a request: approve, deny, withdraw, nudge; and what time decides: reminders,
escalation, expiry. Who may approve comes from the stored request's action, never from the click; the
store records each decision in one atomic step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.approvals import (
    Action,
    Approval,
    ChangeRequest,
    DecisionResult,
    ReminderPolicy,
    RequestChange,
    RequestChangeKind,
    RequestState,
    Verdict,
)
from bot.domain.errors import UsageError
from bot.domain.hints import hint
from bot.domain.history import Event
from bot.domain.integrity import Signer
from bot.domain.ports import ApprovalStore
from bot.domain.user_text import checked_text
from bot.domain.verification import VerifiedIdentity
from bot.services.changes.authority import Authority
from bot.services.changes.errors import NotAllowed
from bot.services.changes.events import Watchers
from bot.services.changes.rates import Rates
from bot.services.changes.review import emergency_people


@dataclass(frozen=True)
class Reminder:
    """Reminder ``number`` of a request still waiting for approvals; ``escalates``: the last one, after
    which the fallback group may approve it too and the fallback channel hears of it."""

    request: ChangeRequest
    number: int
    escalates: bool
    policy: ReminderPolicy


class Decisions:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        authority: Authority,
        rates: Rates,
        signer: Signer,
        watchers: Watchers,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._authority = authority
        self._rates = rates
        self._signer = signer
        self._watchers = watchers
        self._clock = clock

    def button_value(self, request: ChangeRequest) -> str:
        """What the card's buttons carry: the request's id and a MAC of it, nothing that decides anything."""
        return self._signer.button_value(request.id)

    def request_id_of(self, button_value: str) -> str | None:
        """The request a button names, or None when the bot did not make that value."""
        return self._signer.request_id_of(button_value)

    async def approve(
        self, request_id: str, approver: str, origin: str = "", identity: VerifiedIdentity | None = None
    ) -> DecisionResult:
        """Count an approval. Who may approve, and whether it needs a verified Entra sign-in, come from
        the stored request's action, never from the click: the store decides it in one step.
        ``origin`` is where the click came from ("<team>/<app>/<channel>"); ``identity`` is given only
        by the completed sign-in made for this approval of this request (``ApproverVerification``)."""
        if identity is None:  # the sign-in's own approval was rate-limited when its click came in
            await self._rates.click(approver)
        allowed = await self._authority.approvable(approver)
        at = self._clock()
        fallback = await self._authority.in_fallback_group(approver)
        # the stored request, read once, and only for those its action can change something for: a reviewer
        # (who took part in the emergency may not acknowledge it) or whoever may step in once it escalated
        stored = await self._store.get(request_id) if fallback or Action.EMERGENCY_REVIEW in allowed else None
        if (
            stored is not None
            and stored.action == Action.EMERGENCY_REVIEW
            and approver in await emergency_people(self._store, self._signer, stored)
        ):
            allowed -= {Action.EMERGENCY_REVIEW}
            await self._store.refuse(request_id, approver, "took part in the emergency under review", at)
        if (
            fallback
            and stored is not None
            and await self._authority.fallback_may_approve(approver, stored, stored.action, at)
        ):
            allowed |= {stored.action}
        mac = self._signer.approval_mac(request_id, Approval(approver, at, identity))
        verified = self._authority.verified_actions
        entry = self._signer.entry(request_id, Event.APPROVED, approver, at, identity.object_id if identity else "")
        result = await self._store.approve(
            request_id,
            approver,
            at,
            identity,
            mac=mac,
            allowed=allowed,
            verified_actions=verified,
            origin=origin,
            entry=entry,
        )
        if result.request is not None and result.verdict in (Verdict.RECORDED, Verdict.APPROVED):
            kind = RequestChangeKind.APPROVED if result.verdict == Verdict.APPROVED else RequestChangeKind.APPROVAL
            await self._watchers.tell(result.request, RequestChange(kind, approver, count=result.approvals))
        return result

    async def refuse_unverified(self, request_id: str, approver: str, why: str) -> None:
        """Audit an approval whose Entra sign-in did not verify the approver; nothing else changes."""
        await self._store.refuse(request_id, approver, f"verification failed: {why}", self._clock())

    async def deny(self, request_id: str, approver: str, reason: str, origin: str = "") -> DecisionResult:
        checked_text(reason, "reason")
        await self._rates.click(approver)
        allowed = await self._authority.approvable(approver)
        at = self._clock()
        entry = self._signer.entry(request_id, Event.DENIED, approver, at, reason)
        result = await self._store.deny(request_id, approver, reason, at, allowed=allowed, origin=origin, entry=entry)
        if result.verdict == Verdict.DENIED and result.request is not None:
            await self._watchers.tell(result.request, RequestChange(RequestChangeKind.DENIED, approver, reason))
        return result

    async def cancel(self, request_id: str, requester: str) -> DecisionResult:
        """The requester withdraws a pending request; an approved one still waiting for its change window may
        be withdrawn by its requester or by anyone who may approve its action (a scheduled one has no person
        as requester)."""
        await self._rates.click(requester)  # each try is audited: as fast as clicks, no faster
        at = self._clock()
        entry = self._signer.entry(request_id, Event.CANCELLED, requester, at)
        result = await self._store.cancel(request_id, requester, at, entry=entry)
        waiting = result.request
        if result.verdict not in (Verdict.NOT_PENDING, Verdict.NOT_REQUESTER) or waiting is None:
            return result
        if waiting.state != RequestState.APPROVED or waiting.waits_until is None:
            return result
        policy = self._authority.policy_of(waiting)
        if waiting.requester != requester and not await self._authority.is_member(requester, policy.approver_groups):
            return DecisionResult(Verdict.NOT_REQUESTER, waiting, len(waiting.approvals))
        at = self._clock()
        entry = self._signer.entry(request_id, Event.CANCELLED, requester, at, "withdrawn while it waited")
        withdrawn = await self._store.withdraw(request_id, requester, at, entry=entry)
        if withdrawn.verdict == Verdict.CANCELLED and withdrawn.request is not None and requester != waiting.requester:
            await self._watchers.tell(withdrawn.request, RequestChange(RequestChangeKind.CANCELLED, requester))
        return withdrawn

    async def nudge(self, request_id: str, user: str) -> ChangeRequest:
        """The requester reminds the approvers of their pending request, once per ``nudge_every``."""
        await self._rates.click(user)
        request = await self._store.get(request_id)
        if request is None:
            raise UsageError(f"There is no request `{request_id}`; {hint('requests')} lists them.")
        if request.requester != user:
            raise NotAllowed(f"Only the person who asked can nudge the approvers of request `{request_id}`.")
        if request.state != RequestState.PENDING or self._clock() >= request.expires_at:
            raise UsageError(f"Request `{request_id}` is not waiting for approvals any more.")
        await self._rates.nudge(request_id, self._authority.reminders.nudge_every)
        await self._store.note(request_id, "nudged", user, "the requester reminded the approvers", self._clock())
        return request

    async def card_posted(self, request_id: str, channel: str, card: str) -> None:
        """The request's card is up in ``channel``; ``card``: where, as the chat names it (opaque here)."""
        await self._store.set_card(request_id, channel, card)
        if (request := await self._store.get(request_id)) is not None:
            await self._watchers.tell(request, RequestChange(RequestChangeKind.POSTED))

    # -- what time decides ------------------------------------------------------------------------
    async def due_reminders(self) -> list[Reminder]:
        """The reminders that have come due for requests still waiting for approvals, each given out once
        across every worker (the store marks it)."""
        policy, now, due = self._authority.reminders, self._clock(), []
        for request in await self._store.pending():
            passed = policy.points_passed(request, now)
            if passed <= request.reminders_sent or now >= request.expires_at:
                continue
            if await self._store.mark_reminded(request.id, passed):
                escalates = passed == len(policy.at) and policy.escalated_at(request) is not None
                event = "escalated" if escalates else "reminded"
                await self._store.note(request.id, event, None, f"reminder {passed} of {len(policy.at)}", now)
                due.append(Reminder(request, passed, escalates, policy))
        return due

    async def expire_due(self) -> list[ChangeRequest]:
        expired = []
        for request_id in await self._store.expire_due(self._clock()):
            request = await self._store.get(request_id)
            if request is not None:
                expired.append(request)
                change = RequestChange(RequestChangeKind.EXPIRED, detail=request.outcome or "")
                await self._watchers.tell(request, change)
        return expired
