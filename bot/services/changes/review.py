"""Who may not acknowledge the review of an emergency rotation: everyone who took part in the emergency
(its requester and approvers, and those of its second rotation). A review is a second pair of eyes."""

from __future__ import annotations

from bot.domain.approvals import Action, ChangeRequest
from bot.domain.integrity import Signer
from bot.domain.ports import ApprovalStore
from bot.services.changes.errors import ForgedRecord


async def emergency_people(store: ApprovalStore, signer: Signer, review: ChangeRequest) -> frozenset[str]:
    """The people of the emergency ``review`` is of, from records that carry the bot's MAC (a record that
    does not raises: who took part cannot be told, so nobody may acknowledge it)."""
    first = await store.get(review.follows or "")
    related = [first] if first is not None else []
    recent = await store.for_domain(review.domain, 50)
    related += [r for r in recent if r.follows == review.follows and r.action == Action.EMERGENCY_ROTATE]
    people: set[str] = set()
    for request in related:
        if signer.problems(request):
            raise ForgedRecord(
                f"the emergency rotation {request.id} under review does not carry the bot's signature: who took "
                "part in it cannot be told. Nothing was recorded; the records are kept for investigation."
            )
        people.add(request.requester)
        people |= {a.approver for a in request.approvals}
    return frozenset(people)
