"""Re-validation of a claimed request right before anything changes: against the stored, signed record and
its history, the policy now (who approved, how many, none the requester, each still allowed, verified where
asked), its time to live, a freeze, a double rotation's first, and the world it was approved on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.actions.base import ActionContext
from bot.domain.approvals import Action, ChangeRequest, RequestState
from bot.domain.integrity import Signer
from bot.domain.model import world_of
from bot.domain.ports import ApprovalStore
from bot.services.changes.authority import Authority
from bot.services.changes.errors import ForgedRecord, RefusedAtExecution
from bot.services.changes.holds import Holds
from bot.services.changes.review import emergency_people


class Revalidation:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        context: ActionContext,
        authority: Authority,
        holds: Holds,
        signer: Signer,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._context = context
        self._authority = authority
        self._holds = holds
        self._signer = signer
        self._clock = clock

    async def same_world(self, request: ChangeRequest) -> None:
        """The domain is as it was when the request was made (and approved on that): a request replayed or
        re-queued after the world moved on changes nothing."""
        if not request.world:
            return  # a record from before worlds were kept: its expected key version still guards rotations
        now = world_of(await self._context.directory(request.domain).read_kerberos_objects())
        if now != request.world:
            raise RefusedAtExecution(
                f"the domain's Kerberos objects changed since it was requested (then: {request.world}; now: "
                f"{now}); nothing was changed. Request it again on the world as it is"
            )

    async def revalidate(self, request: ChangeRequest) -> None:
        """The request as stored now, against the policy of its action: signed by the bot, enough
        distinct approvers, none of them the requester, each still in an approver group, verified
        where the policy says so, and not waiting longer than its time to live. A second rotation
        approved together with its first holds up by the first's approvals, checked the same way.
        Raises when not."""
        stored = await self._store.get(request.id)
        if stored is None:
            raise RefusedAtExecution("the request is no longer in the approval store")
        forged = self._signer.problems(stored)
        changed = [
            n
            for n in ("action", "domain", "requester", "approvals_required")
            if getattr(stored, n) != getattr(request, n)
        ]
        if forged or changed:
            what = ", ".join(forged + [f"its {n} changed since the claim" for n in changed])
            raise ForgedRecord(
                f"the stored record does not carry the bot's signature ({what}): something other than the bot "
                "wrote to the approval store. Nothing was changed; the record is kept for investigation."
            )
        if stored.approved_with is None:
            await self._authority.check_approvals(stored, stored.action, stored.approvals_required)
        else:  # the first's approvals, by the first's policy and by this one's alike
            first = await self.first_of(stored)
            await self._authority.check_approvals(first, first.action, first.approvals_required)
            await self._authority.check_approvals(first, stored.action, stored.approvals_required)
        if stored.action == Action.EMERGENCY_REVIEW:
            involved = await emergency_people(self._store, self._signer, stored)
            if any(a.approver in involved for a in stored.approvals):
                raise RefusedAtExecution("one who acknowledged it took part in the emergency under review")
        # from the signed times only: the last approval's (or, approved with its first, its filing), or the
        # change window's opening it was deferred to
        approved = max((a.at for a in stored.approvals), default=stored.created_at)
        since = max(approved, stored.waits_until or approved)
        if self._clock() - since > stored.time_to_live:
            raise RefusedAtExecution("it waited for a worker longer than its time to live")
        await self._holds.not_frozen(stored.domain, stored.action, refused=RefusedAtExecution)

    async def first_of(self, second: ChangeRequest) -> ChangeRequest:
        """The first rotation whose approvals approve ``second``: signed, done, and saying so itself."""
        first = await self._store.get(second.approved_with or "")
        if first is None:
            raise RefusedAtExecution(
                f"it was approved together with {second.approved_with}, which is no longer in the approval store"
            )
        if self._signer.problems(first):
            raise ForgedRecord(
                f"the first rotation {first.id} it was approved with does not carry the bot's signature: nothing "
                "was changed; the records are kept for investigation."
            )
        if (
            first.id != second.follows
            or first.domain != second.domain
            or not first.second_with_first
            or first.state != RequestState.SUCCEEDED
            or not self._authority.policies[first.action].second_with_first
        ):
            raise RefusedAtExecution(
                f"it was approved together with {first.id}, but that is not a finished double rotation of "
                f"{second.domain} whose approvals cover its second rotation under the policy now"
            )
        if not first.after or second.world != first.after:
            # one second rotation per first: the one filed on the world the first left; once it ran, the key
            # moved on, and any other filing (a pairing deleted and re-made) finds another world
            raise RefusedAtExecution(
                f"it is not the second rotation of the world {first.id} left (then: {first.after or 'not kept'}; "
                f"filed on: {second.world or 'not kept'}): the first's approvals cover one second rotation only"
            )
        return first
