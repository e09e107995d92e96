"""Operator-executes mode, after the handover: who is named to run an approved change, and the bot's look at
AD and Entra's audit log that concludes it (verified, another effect, someone else's change, nothing in time).

The executor hands a change over (``Executor``, under its claim, re-validated and fenced like a module
call); from then on any replica may look, and the store concludes a request once (``ApprovalStore.conclude``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from bot.actions.base import ActionContext
from bot.actions.registry import ACTION_SPECS
from bot.domain.approvals import KEY_ROTATIONS, ChangeRequest, GroupDirectory, RequestChange, RequestChangeKind
from bot.domain.approvals import RequestState as S
from bot.domain.errors import KerberosBotError, UsageError
from bot.domain.history import Event
from bot.domain.integrity import Signer
from bot.domain.model import world_of
from bot.domain.operators import (
    UNREADABLE_FOR,
    Handover,
    Judgement,
    OperatorPolicy,
    Verdict,
    handover_of,
    judge,
)
from bot.domain.ports import ApprovalStore, EntraDirectory
from bot.services.changes.errors import NotAllowed, RefusedAtExecution
from bot.services.changes.events import Watchers
from bot.services.changes.rates import Rates

log = logging.getLogger(__name__)

# the state each final verdict leaves the request in, and how its outcome begins
_CONCLUDED = {
    Verdict.VERIFIED: (S.SUCCEEDED, Event.SUCCEEDED, "Verified"),
    Verdict.NOTHING: (S.FAILED, Event.FAILED, "Not run"),
    Verdict.DIFFERENT: (S.ATTENTION, Event.ATTENTION, "Needs attention"),
    Verdict.SOMEONE_ELSE: (S.ATTENTION, Event.ATTENTION, "Needs attention"),
    Verdict.UNCONFIRMED: (S.ATTENTION, Event.ATTENTION, "Needs attention"),
    Verdict.UNREADABLE: (S.ATTENTION, Event.ATTENTION, "Needs attention"),
}


@dataclass(frozen=True)
class Look:
    """One look at a handed-over change: what was seen, and whether it concluded the request."""

    request: ChangeRequest  # as stored after the look
    handover: Handover | None
    judgement: Judgement
    concluded: bool
    new_key_version: int | None = None  # a verified rotation: what every DC should come to hold


class Operators:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        context: ActionContext,
        signer: Signer,
        watchers: Watchers,
        clock: Callable[[], datetime],
        policy: OperatorPolicy,
        groups: GroupDirectory,
        entra: EntraDirectory | None,
        account_of: Callable[[str], Awaitable[str | None]],
        rates: Rates,
    ) -> None:
        self._store = store
        self._context = context
        self._signer = signer
        self._watchers = watchers
        self._clock = clock
        self.policy = policy
        self._groups = groups
        self._entra = entra
        self._account_of = account_of  # a chat user's Entra account (UPN), as approvers' are matched
        self._rates = rates

    async def pick(self, request: ChangeRequest) -> tuple[str, str]:
        """Who runs ``request`` (chat id, Entra account): a member of an operator group, never its requester (nor
        their Entra account), nor one of its approvers where it needs two or more. Spread over the eligible by the
        request's id, so that one person is not named for every change. Raises when nobody is eligible."""
        eligible = sorted(await self._members())
        if eligible:
            start = int(hashlib.sha256(request.id.encode()).hexdigest(), 16) % len(eligible)
            for user in eligible[start:] + eligible[:start]:
                if (upn := await self._eligible_account(request, user)) is not None:
                    return user, upn
        raise RefusedAtExecution(
            "no operator can run it: nobody in the operator groups is eligible (never its requester, nor one of its "
            "approvers where it needs two) with an Entra account the bot can match"
        )

    async def take_over(self, request_id: str, user: str) -> tuple[ChangeRequest, Handover, Handover]:
        """``user`` runs a change handed to another operator (who is away, say): allowed to anyone ``pick`` could
        have named, while AD is still as approved and the time limit has not passed. The new handover (their
        command, their account, a full time limit from now but never past twice the limit from the first
        handover) is signed into the history, only if nothing happened to the request meanwhile. Returns the
        request as stored, the previous handover and the new one."""
        await self._rates.click(user)  # each try reads the groups, Entra and AD: as fast as clicks, no faster
        request = await self._store.get(request_id)
        if request is None:
            raise UsageError(f"There is no request {request_id}.")
        if self._signer.problems(request):
            raise UsageError(
                f"Request {request_id}'s stored record does not carry the bot's signature: it is kept for "
                "investigation, and nobody takes it over."
            )
        previous = handover_of(request)
        if request.state != S.WITH_OPERATOR or previous is None:
            raise UsageError(f"Request {request_id} is not waiting for an operator (it is {request.state.value}).")
        if previous.operator == user:
            raise UsageError(f"Request {request_id} is already yours to run.")
        upn = await self._eligible_account(request, user) if user in await self._members() else None
        if upn is None:
            raise NotAllowed(
                f"You cannot run request {request_id}: an operator who takes it over must be in the operator groups, "
                "not its requester, nor one of its approvers where it needs two, with an Entra account the bot can "
                "match."
            )
        now = self._clock()
        if now > previous.until:
            raise UsageError(f"Request {request_id}'s time limit has passed; the bot closes it at its next look.")
        state = await self._context.directory(request.domain).read_kerberos_objects()
        if world_of(state) != request.world:
            raise UsageError(
                f"AD no longer is as request {request_id} was approved on: {previous.upn} may be running it; it "
                "cannot be taken over now (the bot's next look says what it sees)."
            )
        hand_over = ACTION_SPECS[request.action].hand_over
        if hand_over is None:  # only a change an operator can run is ever with one
            raise UsageError(f"Request {request_id} has nothing for an operator to run.")
        handing = await hand_over(self._context, request, upn)
        # a full time limit for the taker, but never past twice the limit from the first handover: an approved
        # change is run soon after its approval, however often it is taken over
        first = next(e.at for e in request.history if e.event == Event.HANDED_OVER)
        until = min(now + self.policy.time_limit, first + 2 * self.policy.time_limit)
        handover = Handover(user, upn, now, until, handing.command, handing.effect)
        entry = self._signer.entry(request.id, Event.HANDED_OVER, user, now, handover.encoded())
        if not await self._store.hand_over_again(request.id, len(request.history), now, entry):
            raise UsageError(f"Request {request_id} changed while you took it over; look at its card and try again.")
        taken = await self._store.get(request_id) or request
        log.info("request %s taken over by another operator", request.id)
        await self._watchers.tell(taken, RequestChange(RequestChangeKind.HANDED_OVER, actor=user))
        return taken, previous, handover

    async def _members(self) -> set[str]:
        members: set[str] = set()
        for group in sorted(self.policy.groups):
            members |= await self._groups.members(group)
        return members

    async def _eligible_account(self, request: ChangeRequest, user: str) -> str | None:
        """``user``'s Entra account if they may run ``request`` (they are in an operator group): never its
        requester, nor one of its approvers where it needs two or more, by chat id or by Entra account."""
        excluded = {request.requester}
        excluded_accounts = {(request.requester_upn or "").lower()}
        if request.approvals_required >= 2:
            excluded |= {a.approver for a in request.approvals}
            excluded_accounts |= {a.identity.upn.lower() for a in request.approvals if a.identity}
        if user in excluded:
            return None
        upn = await self._account_of(user)
        return upn if upn and upn.lower() not in excluded_accounts else None

    async def look(self) -> list[Look]:
        """Every handed-over change, looked at once; the ones this look concluded."""
        concluded = []
        for request in await self._store.with_operator():
            seen: Look | None
            try:
                seen = await self._look_at(request)
            except KerberosBotError as exc:
                log.warning("could not look at request %s with its operator: %s", request.id, exc.user_message)
                seen = await self._unreadable(request, exc.user_message)
            if seen is not None and seen.concluded:
                concluded.append(seen)
        return concluded

    async def done(self, request_id: str, user: str) -> Look:
        """The named operator says they ran it: the bot looks at once (it concludes nothing on their word)."""
        await self._rates.click(user)  # each look reads AD and Entra's audit log
        request = await self._store.get(request_id)
        if request is None:
            raise UsageError(f"There is no request {request_id}.")
        handover = handover_of(request) if not self._signer.problems(request) else None
        if request.state != S.WITH_OPERATOR or handover is None:
            raise UsageError(f"Request {request_id} is not waiting for an operator (it is {request.state.value}).")
        if handover.operator != user:
            raise NotAllowed(f"Request {request_id} was handed to another operator; only they can say it ran.")
        now = self._clock()
        said = self._signer.entry(request.id, Event.STEP, user, now, "the operator says it ran")
        await self._store.record_step(request.id, "the operator says it ran", now, entry=said)
        return await self._look_at(await self._store.get(request_id) or request)

    async def _unreadable(self, request: ChangeRequest, why: str) -> Look | None:
        """Flagged when what the operator did still cannot be read an hour after the limit; None: not yet."""
        handover = handover_of(request) if not self._signer.problems(request) else None
        if handover is None or self._clock() <= handover.until + UNREADABLE_FOR:
            return None
        judgement = Judgement(
            Verdict.UNREADABLE,
            f"AD or Entra's audit log could not be read since the limit ({why}): what was done is not known. "
            f"Check with {handover.upn} and read the domain's status.",
        )
        return await self._conclude(request, handover, judgement, "")

    async def _look_at(self, request: ChangeRequest) -> Look:
        now = self._clock()
        forged = self._signer.problems(request)
        handover = handover_of(request) if not forged else None
        if handover is None:
            what = ", ".join(forged) or "its handover is not readable"
            judgement = Judgement(
                Verdict.DIFFERENT,
                f"the stored record does not carry the bot's signature ({what}): nothing is concluded from it; it is "
                "kept for investigation.",
            )
            return await self._conclude(request, None, judgement, "")
        state = await self._context.directory(request.domain).read_kerberos_objects()
        events = (
            await self._entra.kerberos_domain_events(request.domain, since=handover.at, limit=50)
            if self._entra is not None
            else []
        )
        judgement = judge(handover, request.world, state, events, now)
        if not judgement.final:
            return Look(request, handover, judgement, concluded=False)
        rotated = judgement.verdict == Verdict.VERIFIED and request.action in KEY_ROTATIONS
        look = await self._conclude(request, handover, judgement, world_of(state) if rotated else "")
        key = state.server.key if state.server else None
        if rotated and look.concluded and key is not None:
            return replace(look, new_key_version=key.version)
        return look

    async def _conclude(
        self, request: ChangeRequest, handover: Handover | None, judgement: Judgement, after: str
    ) -> Look:
        state, event, opening = _CONCLUDED[judgement.verdict]
        by = f" by {handover.upn}" if handover is not None else ""
        outcome = f"{opening}{by}: {judgement.saw}"
        if judgement.verdict == Verdict.NOTHING:
            outcome += " The request is closed; request it again if it is still needed."
        now = self._clock()
        entry = self._signer.entry(request.id, event, "", now, outcome)
        after_mac = self._signer.after_mac(request.id, after) if after else ""
        if not await self._store.conclude(
            request.id, state, outcome, now, after=after, after_mac=after_mac, entry=entry
        ):
            return Look(request, handover, judgement, concluded=False)  # another replica concluded it first
        done = await self._store.get(request.id) or request
        log.info("request %s with its operator: %s", request.id, judgement.verdict.value)
        kind = {
            S.SUCCEEDED: RequestChangeKind.SUCCEEDED,
            S.FAILED: RequestChangeKind.FAILED,
        }.get(state, RequestChangeKind.ATTENTION)
        await self._watchers.tell(done, RequestChange(kind, detail=outcome))
        return Look(done, handover, judgement, concluded=True)
