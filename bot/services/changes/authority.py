"""Who may approve what: the approver groups of each action's policy, the fallback group once a request
escalated (never for break-glass), and whether a stored request's approvals hold up under the policy now."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.approvals import Action, ActionPolicy, ChangeRequest, GroupDirectory, ReminderPolicy
from bot.services.changes.errors import RefusedAtExecution


class Authority:
    def __init__(
        self, *, groups: GroupDirectory, policies: Mapping[Action, ActionPolicy], reminders: ReminderPolicy
    ) -> None:
        self._groups = groups
        self.policies = dict(policies)
        self.reminders = reminders

    def policy_of(self, request: ChangeRequest) -> ActionPolicy:
        """The policy of the request's stored action: what approving it takes."""
        return self.policies[request.action]

    async def is_member(self, user: str, groups: frozenset[str]) -> bool:
        for group in groups:
            if user in await self._groups.members(group):
                return True
        return False

    async def approvable(self, user: str) -> frozenset[Action]:
        """The actions whose approver groups hold ``user``; the store checks the stored action against them."""
        return frozenset([a for a, p in self.policies.items() if await self.is_member(user, p.approver_groups)])

    @property
    def verified_actions(self) -> frozenset[Action]:
        return frozenset(a for a, p in self.policies.items() if p.verified_approval)

    @property
    def every_approver_group(self) -> frozenset[str]:
        """Who may approve any action: they may stop changes in a domain (and end that stop)."""
        return frozenset().union(*(p.approver_groups for p in self.policies.values()))

    async def fallback_may_approve(self, user: str, request: ChangeRequest, action: Action, at: datetime) -> bool:
        """``user`` may approve ``request`` under ``action``'s policy at ``at`` as a member of the fallback group:
        it had escalated by then (from its signed times alone), and the action is not break-glass."""
        group, escalated = self.reminders.fallback_for(action), self.reminders.escalated_at(request)
        if group is None or escalated is None or at < escalated:
            return False
        return await self.is_member(user, frozenset({group}))

    async def in_fallback_group(self, user: str) -> bool:
        fallback = self.reminders.fallback_group
        return fallback is not None and await self.is_member(user, frozenset({fallback}))

    async def may_approve(
        self, user: str, request: ChangeRequest, at: datetime, approvable: frozenset[Action] | None = None
    ) -> bool:
        """``user`` may approve ``request`` at ``at``: in an approver group of its action, or of the fallback
        group once it escalated; never its requester, nor someone who approved it already. ``approvable``:
        ``self.approvable(user)``, when the caller has read it already."""
        if request.requester == user or any(a.approver == user for a in request.approvals):
            return False
        if request.action in (approvable if approvable is not None else await self.approvable(user)):
            return True
        return await self.fallback_may_approve(user, request, request.action, at)

    async def concerned_with(self, request: ChangeRequest) -> frozenset[str]:
        """Who a change of ``request`` concerns: its requester and whoever may approve its action (the
        fallback group too, where it escalates)."""
        groups = set(self.policies[request.action].approver_groups)
        if (fallback := self.reminders.fallback_for(request.action)) is not None:
            groups.add(fallback)
        people = {request.requester}
        for group in groups:
            people |= await self._groups.members(group)
        return frozenset(people)

    async def check_approvals(self, stored: ChangeRequest, action: Action, required: int) -> None:
        """``stored``'s approvals hold up under the policy of ``action`` now, ``required`` of them (the number
        signed in the request, which may not be below the policy's). Raises when not."""
        policy = self.policies[action]
        if required < policy.approvals_required:
            raise RefusedAtExecution(
                f"it asks for {required} approvals where the policy now needs {policy.approvals_required}"
            )
        # one person each: an Entra user counts once whatever Slack accounts approved as them
        people = {a.identity.object_id if a.identity else a.approver for a in stored.approvals}
        # the stored count, which the check above keeps at least the policy's (more for a takeover setup)
        if len(people) < required:
            raise RefusedAtExecution(f"it has {len(people)} distinct approvers; it needs {required}")
        for approval in stored.approvals:
            if not stored.approvable_at(approval.at):
                raise RefusedAtExecution(
                    f"the approval by {approval.approver} is dated outside the request's life "
                    f"({approval.at:%Y-%m-%d %H:%M} UTC)"
                )
            if (
                approval.approver == stored.requester
                or (
                    approval.identity and stored.requester_upn and approval.identity.upn.lower() == stored.requester_upn
                )
                or (
                    approval.identity
                    and stored.requester_oid
                    and approval.identity.object_id.lower() == stored.requester_oid.lower()
                )
            ):
                raise RefusedAtExecution("the requester is among its approvers")
            if not await self.is_member(
                approval.approver, policy.approver_groups
            ) and not await self.fallback_may_approve(approval.approver, stored, action, approval.at):
                raise RefusedAtExecution(f"its approver {approval.approver} is no longer in an approver group")
            if policy.verified_approval and (approval.identity is None or not approval.identity.mfa):
                raise RefusedAtExecution(f"the approval by {approval.approver} has no verified Entra sign-in with MFA")
