"""Taking requests: who may ask and why, the action's pre-flight (which refuses what cannot succeed and
writes the plan), the policy's approvals, and the signed record in the store. The bot files some itself
(its cadence, the second half of a double rotation, the review of an emergency)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.actions.base import ActionContext, Ask, Draft
from bot.actions.registry import ACTION_SPECS
from bot.domain.approvals import ACTION_KINDS, Action, ActionPolicy, ChangeRequest, RequestState
from bot.domain.errors import KerberosBotError, UsageError
from bot.domain.hints import hint
from bot.domain.history import Event
from bot.domain.integrity import Signer
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES, world_of
from bot.domain.operators import ExecutionMode, OperatorPolicy
from bot.domain.ports import ApprovalStore
from bot.domain.user_text import checked_text
from bot.services.changes.authority import Authority
from bot.services.changes.errors import NotAllowed
from bot.services.changes.holds import Holds
from bot.services.changes.rates import Rates
from bot.services.verification import ApproverVerification

# the requester of what the bot files itself (its lifecycle policy): never a Slack user id, so never an approver
SCHEDULER = "kerberos-bot"


class Intake:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        context: ActionContext,
        authority: Authority,
        holds: Holds,
        rates: Rates,
        signer: Signer,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:10],
        verification: ApproverVerification | None = None,
        operators: OperatorPolicy | None = None,
    ) -> None:
        self._operators = operators
        self._store = store
        self._context = context
        self._authority = authority
        self._holds = holds
        self._rates = rates
        self._signer = signer
        self._clock = clock
        self._new_id = new_id
        self._verification = verification

    async def request(self, action: Action, ask: Ask, *, scheduled: bool = False) -> ChangeRequest:
        """Check who asks and why, run the action's pre-flight (refusing what cannot succeed), record it.
        ``scheduled``: filed by the bot itself (its lifecycle policy, or the second half of a double
        rotation someone asked for): no requester group or rate limit; the approvals are the same."""
        spec = ACTION_SPECS[action]
        directory = self._context.directory(ask.domain)
        policy = self._authority.policies[action]
        command = ACTION_KINDS[action].command
        if (
            not scheduled
            and policy.requester_groups
            and not await self._authority.is_member(ask.requester, policy.requester_groups)
        ):
            raise NotAllowed(f"You are not in a group allowed to request `{command}`.")
        if not ask.reason.strip():
            raise UsageError(f"Say why, after `--`: {hint(f'{command} {ask.domain} -- <reason>')}.")
        checked_text(ask.reason, "reason")
        if not policy.approver_groups:
            raise NotAllowed(
                f"`{command}` has no approver group: set [approvals.{action.value}] "
                "approver_groups in the configuration (for emergency-rotate: a break-glass group)."
            )
        await self._holds.not_frozen(directory.domain_dns_name, action)
        twice = (ask.twice and action in (Action.ROTATE, Action.ROTATE_FORCE)) or (
            action == Action.EMERGENCY_ROTATE and ask.follows is None
        )
        ask = replace(ask, twice=twice, second_with_first=twice and policy.second_with_first)
        if not scheduled:
            await self._rates.request(ask.requester)
        draft = await spec.preflight(self._context, directory, ask)
        world = world_of(await directory.read_kerberos_objects())  # what approvers approve it on
        now = self._clock()
        request = ChangeRequest(
            id=self._new_id(),
            action=action,
            domain=directory.domain_dns_name,
            requester=ask.requester,
            reason=ask.reason.strip(),
            plan=draft.plan + self._who_runs_it(directory.domain_dns_name, action),
            created_at=now,
            expires_at=now + policy.ttl,
            approvals_required=self._approvals_for(policy, draft),
            channel=ask.channel,
            expected_key_version=draft.expected_key_version,
            top_level_names=draft.top_level_names,
            origin=ask.origin,
            requester_upn=(upn := await self._entra_account_of(ask.requester)),
            requester_oid=await self._entra_object_of(upn),
            twice=ask.twice,
            follows=ask.follows,
            second_with_first=ask.second_with_first,
            approved_with=ask.approved_with if scheduled else None,
            world=world,
        )
        if request.approved_with is not None:  # the store records it approved, and the workers get it at once
            request = replace(request, state=RequestState.APPROVED, approved_at=now)
        request = replace(request, mac=self._signer.request_mac(request))
        together = f"approved with {request.approved_with}" if request.approved_with else ""
        filed = self._signer.entry(request.id, Event.FILED, request.requester, now, together)
        await self._store.create(request, entry=filed)
        return replace(request, history=(filed,))

    def _who_runs_it(self, domain: str, action: Action) -> tuple[str, ...]:
        """The plan says when a person, not the bot, will run it (operator-executes mode)."""
        if self._operators is None or self._operators.execution(domain, action) != ExecutionMode.OPERATOR:
            return ()
        minutes = round(self._operators.time_limit.total_seconds() / 60)
        limit = f"{minutes} minutes" if minutes < 120 or minutes % 60 else f"{minutes // 60} hours"
        return (
            f"Run by a person: once approved, an operator from the operator groups runs it on the management host "
            f"with their own MFA sign-in, within {limit}; the bot verifies the effect in AD and Entra's audit log",
        )

    def _approvals_for(self, policy: ActionPolicy, draft: Draft) -> int:
        removal = self._authority.policies.get(Action.REMOVE_ALL)
        if draft.as_strong_as_removal and removal is not None:
            return max(policy.approvals_required, removal.approvals_required)
        return policy.approvals_required

    async def _entra_object_of(self, upn: str | None) -> str | None:
        """The requester's Entra object id: the person, whatever names their sign-ins carry."""
        if self._verification is None or upn is None:
            return None
        return await self._verification.object_id_of(upn)

    async def _entra_account_of(self, chat_user: str) -> str | None:
        """The requester's Entra account, so that it can never approve, even from a second Slack account."""
        if self._verification is None:
            return None
        try:
            return (await self._verification.expected_user(chat_user)).lower()
        except KerberosBotError:
            return None  # not matched: their Slack id is still refused

    # -- what people ask for ----------------------------------------------------------------------
    async def request_rotation(
        self,
        domain: str,
        *,
        requester: str,
        reason: str,
        force: bool,
        channel: str | None = None,
        origin: str = "",
        twice: bool = False,
    ) -> ChangeRequest:
        action = Action.ROTATE_FORCE if force else Action.ROTATE
        return await self.request(action, Ask(domain, requester, reason, channel, origin=origin, twice=twice))

    async def request_emergency_rotation(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None, origin: str = ""
    ) -> ChangeRequest:
        """Break-glass for a suspected compromise: a forced rotation now and a second once the new key is on
        every DC, each approved by the break-glass policy, and a review by two people afterwards."""
        return await self.request(Action.EMERGENCY_ROTATE, Ask(domain, requester, reason, channel, origin=origin))

    async def request_remove_tdo(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None, origin: str = ""
    ) -> ChangeRequest:
        return await self.request(Action.REMOVE_TDO, Ask(domain, requester, reason, channel, origin=origin))

    async def request_setup(
        self,
        domain: str,
        *,
        requester: str,
        reason: str,
        top_level_names: tuple[str, ...] = DEFAULT_TOP_LEVEL_NAMES,
        channel: str | None = None,
        origin: str = "",
    ) -> ChangeRequest:
        ask = Ask(domain, requester, reason, channel, tuple(top_level_names), origin=origin)
        return await self.request(Action.SETUP, ask)

    async def request_remove_all(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None, origin: str = ""
    ) -> ChangeRequest:
        return await self.request(Action.REMOVE_ALL, Ask(domain, requester, reason, channel, origin=origin))

    # -- what the bot files itself ----------------------------------------------------------------
    async def request_on_schedule(
        self, domain: str, *, reason: str, channel: str, origin: str, twice: bool = False
    ) -> ChangeRequest:
        """A rotation the domain's lifecycle policy asks for: requested by the bot, approved as any other."""
        ask = Ask(domain, SCHEDULER, reason, channel, origin=origin, twice=twice)
        return await self.request(Action.ROTATE, ask, scheduled=True)

    async def request_review(self, second: ChangeRequest) -> ChangeRequest:
        """After an emergency's second rotation: a card that people must acknowledge (nothing runs)."""
        first = second.follows or second.id
        reason = f"Review the emergency rotation {first} of {second.domain}: was it needed, and what follows?"
        ask = Ask(second.domain, SCHEDULER, reason, second.channel, origin=second.origin, follows=first)
        return await self.request(Action.EMERGENCY_REVIEW, ask, scheduled=True)

    async def request_second_rotation(self, first: ChangeRequest) -> ChangeRequest:
        """The second half of the double rotation ``first``: without -Force (the 24-hour window has passed),
        in its channel, in the first's requester's name (so they cannot approve it either), its own approvals."""
        reason = (
            f"Second rotation of {first.id}: it retires the key that the first rotation left valid as the "
            "secondary key."
        )
        ask = Ask(
            first.domain,
            first.requester,
            reason,
            first.channel,
            origin=first.origin,
            follows=first.id,
            approved_with=first.id if first.second_with_first else None,
        )
        # an emergency's second rotation is forced where needed (the new key is on every DC, but 24 hours may
        # not have passed), by the break-glass policy
        action = Action.EMERGENCY_ROTATE if first.action == Action.EMERGENCY_ROTATE else Action.ROTATE
        return await self.request(action, ask, scheduled=True)
