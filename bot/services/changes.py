"""Use cases of the dangerous actions: request, decide, execute. The only place approval is enforced,
so no entry point can skip it.

Every action is one ``ActionSpec`` in ``ACTION_SPECS`` (its kind: title, configuration key, default
policy; its pre-flight, which refuses up front and writes the plan; its carry-out). Dispatch is a
lookup that fails loudly for an action without a spec.

Execution holds a lease: the claim takes the request and its domain's lock in one atomic step,
a heartbeat renews the lease while the change runs, and the change is stopped at
``ExecutionLimits.change_timeout``. A worker that dies stops renewing; within one lease its
request is flagged "needs attention" by whichever worker sweeps next, and the domain is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from bot.domain.approvals import (
    ACTION_KINDS,
    KEY_ROTATIONS,
    Action,
    ActionKind,
    ActionPolicy,
    Approval,
    ApprovalStore,
    AuditEntry,
    ChangeRequest,
    Claim,
    DecisionResult,
    FinishResult,
    Freeze,
    GroupDirectory,
    ReminderPolicy,
    RequestChange,
    RequestChangeKind,
    RequestState,
    Verdict,
)
from bot.domain.diagnosis import RotationPolicy, RotationWindow, rotation_window
from bot.domain.errors import KerberosBotError, UnknownDomainError, UsageError
from bot.domain.integrity import Signer
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES, KERBEROS_REALM, AuditEvent, OnPremState, dns_name
from bot.domain.ports import (
    ActiveDirectory,
    EntraDirectory,
    Freezes,
    KerberosModule,
    RateLimiter,
    RequestWatcher,
    SetServerOptions,
)
from bot.domain.top_level_names import check_top_level_names
from bot.domain.verification import VerifiedIdentity
from bot.domain.windows import ALWAYS_OPEN, ChangeWindows, OutsideWindow
from bot.observability.logs import REQUEST_ID, SLACK_USER
from bot.observability.metrics import Metrics
from bot.services.verification import ApproverVerification

log = logging.getLogger(__name__)

# the requester of what the bot files itself (its lifecycle policy): never a Slack user id, so never an approver
SCHEDULER = "kerberos-bot"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "never, by its metadata"


T = TypeVar("T")


@dataclass(frozen=True)
class ExecutionLimits:
    """The lease a running change holds, and how long a change may run.

    A dead worker's request is flagged within ``lease`` plus one sweep (well under a minute); a live
    worker renews every ``renew_every``; a change still running at ``change_timeout`` is stopped and
    flagged, its lease then lapses too, so no lock is held longer than ``change_timeout + lease``."""

    lease: timedelta = timedelta(seconds=30)
    renew_every: timedelta = timedelta(seconds=10)
    change_timeout: timedelta = timedelta(minutes=20)
    inventory_timeout: timedelta = timedelta(seconds=60)  # re-reading AD and Entra after a failure
    request_retention: timedelta = timedelta(days=400)  # finished requests are forgotten after this
    audit_retention: timedelta = timedelta(days=400)

    def __post_init__(self) -> None:
        if not self.renew_every * 2 < self.lease:
            raise ValueError("renew the lease at least twice within it")


class PreflightError(UsageError):
    """The request cannot succeed; it is refused before any approver sees it."""


class NotAllowed(UsageError):
    pass


class RateLimited(UsageError):
    """A user asks or clicks faster than the configured rate; nothing was recorded."""


@dataclass(frozen=True)
class RateLimits:
    requests_per_hour: int = 20  # new change requests per requester
    clicks_per_minute: int = 30  # Approve/Deny clicks per user


class RefusedAtExecution(KerberosBotError):
    """A claimed request does not hold up against the stored policy any more; nothing was changed."""


class ForgedRecord(RefusedAtExecution):
    """The stored request or an approval does not carry the bot's MAC: something else wrote to Redis."""


@dataclass(frozen=True)
class Execution:
    request: ChangeRequest
    succeeded: bool
    outcome: str
    new_key_version: int | None = None  # after a rotation: what every DC should come to hold


@dataclass(frozen=True)
class Deferral:
    """A claimed request approved outside its domain's change window: back in the store, waiting until
    ``runs_at`` (nothing was changed)."""

    request: ChangeRequest
    runs_at: datetime
    windows: ChangeWindows


@dataclass(frozen=True)
class Reminder:
    """Reminder ``number`` of a request still waiting for approvals; ``escalates``: the last one, after
    which the fallback group may approve it too and the fallback channel hears of it."""

    request: ChangeRequest
    number: int
    escalates: bool
    policy: ReminderPolicy


@dataclass(frozen=True)
class KeyPropagation:
    key_version: int
    agreed: tuple[str, ...]  # DCs that hold the new key
    lagging: tuple[str, ...]  # DCs that still show an older key, or did not answer
    waited: timedelta


@dataclass(frozen=True)
class DomainHistory:
    """What happened to a domain's Kerberos server: the bot's requests with their audit, newest first,
    and Entra's KerberosDomain audit events (changes by anyone, through the bot or not)."""

    domain: str
    requests: tuple[tuple[ChangeRequest, tuple[AuditEntry, ...]], ...]
    cloud_events: tuple[AuditEvent, ...] | None  # None: not read (no Entra, or it failed: cloud_problem)
    cloud_problem: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Ask:
    """What a requester asked for, before the pre-flight."""

    domain: str
    requester: str
    reason: str
    channel: str | None = None
    top_level_names: tuple[str, ...] = DEFAULT_TOP_LEVEL_NAMES  # setup only
    origin: str = ""  # "<team>/<app>/<channel>": approvals count only from there
    twice: bool = False  # rotate: a double rotation (the second is filed after the 24-hour window)
    follows: str | None = None  # rotate: the second of a double rotation, after this request
    approved_with: str | None = None  # the second rotation, approved together with this first one
    second_with_first: bool = False  # set by the service from the policy: the plan says who approves the second


@dataclass(frozen=True)
class Draft:
    """What a pre-flight that let the request through decided: the plan approvers see, and what the
    carry-out re-checks."""

    plan: tuple[str, ...]
    expected_key_version: int | None = None
    top_level_names: tuple[str, ...] = ()
    # the change is as dangerous as removing everything (a setup that takes over another tenant's
    # server): it needs as many approvals as remove-all, if that asks for more
    as_strong_as_removal: bool = False


class ChangeService:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        module: KerberosModule,
        directories: Mapping[str, ActiveDirectory],
        groups: GroupDirectory,
        policies: Mapping[Action, ActionPolicy],
        rotation: RotationPolicy,
        clock: Callable[[], datetime],
        forest_roots: Mapping[str, str] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:10],
        verification: ApproverVerification | None = None,
        limits: ExecutionLimits | None = None,
        signer: Signer | None = None,
        limiter: RateLimiter | None = None,
        rate_limits: RateLimits | None = None,
        entra: EntraDirectory | None = None,
        metrics: Metrics | None = None,
        freezes: Freezes | None = None,
        windows: Mapping[str, ChangeWindows] | None = None,
        approval_channels: Mapping[str, str] | None = None,
        reminders: ReminderPolicy | None = None,
    ) -> None:
        self.reminders = reminders or ReminderPolicy()
        # domain -> the channel its cards go to and its approvals come from (absent: where it is asked)
        self._approval_channels = {dns_name(d): c for d, c in (approval_channels or {}).items()}
        self._watchers: list[RequestWatcher] = []
        self._telling = 0  # watchers being told something now (see drain)
        self._windows = {dns_name(d): w for d, w in (windows or {}).items()}  # absent: always open
        self._freezes = freezes  # None: freezes are off (no shared store to keep them in)
        self.metrics = metrics or Metrics.create()  # the handlers count clicks on the same set
        self._entra = entra  # Entra's KerberosDomain audit events, for a domain's history
        self._limiter = limiter
        self._rate_limits = rate_limits or RateLimits()
        # without a configured key (unit tests), a key of this process's own: nothing it signs
        # verifies in another process, so a deployment always passes the configured one
        self._signer = signer or Signer(secrets.token_bytes(32))
        self._verification = verification
        self._limits = limits or ExecutionLimits()
        self._module_called: set[str] = set()  # requests whose module call started in this process
        self._forest_roots = dict(forest_roots or {})  # domain -> its forest root (absent: itself)
        self._store = store
        self._module = module
        self._directories = dict(directories)
        self._groups = groups
        self._policies = dict(policies)
        self._rotation = rotation
        self._clock = clock
        self._new_id = new_id

    async def _is_member(self, user: str, groups: frozenset[str]) -> bool:
        for group in groups:
            if user in await self._groups.members(group):
                return True
        return False

    def _directory(self, domain: str) -> ActiveDirectory:
        wanted = dns_name(domain)
        if wanted not in self._directories:
            raise UnknownDomainError(domain, list(self._directories))
        return self._directories[wanted]

    # -- request ----------------------------------------------------------------------------------
    async def request(self, action: Action, ask: Ask, *, scheduled: bool = False) -> ChangeRequest:
        """Check who asks and why, run the action's pre-flight (refusing what cannot succeed), record it.
        ``scheduled``: filed by the bot itself (its lifecycle policy, or the second half of a double
        rotation someone asked for): no requester group or rate limit; the approvals are the same."""
        spec = ACTION_SPECS[action]
        directory = self._directory(ask.domain)
        policy = self._policies[action]
        if (
            not scheduled
            and policy.requester_groups
            and not await self._is_member(ask.requester, policy.requester_groups)
        ):
            raise NotAllowed(f"You are not in a group allowed to request `{ACTION_KINDS[action].command}`.")
        if not ask.reason.strip():
            typed = f"/kerberos {ACTION_KINDS[action].command} {ask.domain} -- <reason>"
            raise UsageError(f"Say why, after `--`: `{typed}`.")
        if not policy.approver_groups:
            raise NotAllowed(
                f"`{ACTION_KINDS[action].command}` has no approver group: set [approvals.{action.value}] "
                "approver_groups in the configuration (for emergency-rotate: a break-glass group)."
            )
        await self._not_frozen(directory.domain_dns_name, action)
        twice = (ask.twice and action in (Action.ROTATE, Action.ROTATE_FORCE)) or (
            action == Action.EMERGENCY_ROTATE and ask.follows is None
        )
        ask = replace(ask, twice=twice, second_with_first=twice and policy.second_with_first)
        if not scheduled:
            per_hour = self._rate_limits.requests_per_hour
            await self._within_rate(
                f"request:{ask.requester}", per_hour, per_hour / 3600, f"{per_hour} requests an hour"
            )
        draft = await spec.preflight(self, directory, ask)
        now = self._clock()
        request = ChangeRequest(
            id=self._new_id(),
            action=action,
            domain=directory.domain_dns_name,
            requester=ask.requester,
            reason=ask.reason.strip(),
            plan=draft.plan,
            created_at=now,
            expires_at=now + policy.ttl,
            approvals_required=self._approvals_for(policy, draft),
            channel=ask.channel,
            expected_key_version=draft.expected_key_version,
            top_level_names=draft.top_level_names,
            origin=ask.origin,
            requester_upn=await self._entra_account_of(ask.requester),
            twice=ask.twice,
            follows=ask.follows,
            second_with_first=ask.second_with_first,
            approved_with=ask.approved_with if scheduled else None,
        )
        if request.approved_with is not None:  # the store records it approved, and the workers get it at once
            request = replace(request, state=RequestState.APPROVED, approved_at=now)
        request = replace(request, mac=self._signer.request_mac(request))
        await self._store.create(request)
        return request

    def _approvals_for(self, policy: ActionPolicy, draft: Draft) -> int:
        removal = self._policies.get(Action.REMOVE_ALL)
        if draft.as_strong_as_removal and removal is not None:
            return max(policy.approvals_required, removal.approvals_required)
        return policy.approvals_required

    async def _entra_account_of(self, chat_user: str) -> str | None:
        """The requester's Entra account, so that it can never approve, even from a second Slack account."""
        if self._verification is None:
            return None
        try:
            return (await self._verification.expected_user(chat_user)).lower()
        except KerberosBotError:
            return None  # not matched: their Slack id is still refused

    async def history(self, domain: str, *, count: int = 10, lookback: timedelta = timedelta(days=90)) -> DomainHistory:
        """The domain's last ``count`` requests with their audit, and Entra's audit events of ``lookback``."""
        name = self._directory(domain).domain_dns_name
        requests = await self._store.for_domain(name, count)
        audits = await asyncio.gather(*(self._store.audit(r.id) for r in requests))
        since = self._clock() - lookback
        events: tuple[AuditEvent, ...] | None = None
        problem = None
        if self._entra is not None:
            try:
                events = tuple(await self._entra.kerberos_domain_events(name, since=since))
            except KerberosBotError as exc:
                problem = exc.user_message
        pairs = tuple((r, tuple(a)) for r, a in zip(requests, audits, strict=True))
        return DomainHistory(name, pairs, events, problem, since)

    def policy_of(self, request: ChangeRequest) -> ActionPolicy:
        """The policy of the request's stored action: what approving it takes."""
        return self._policies[request.action]

    def button_value(self, request: ChangeRequest) -> str:
        """What the card's buttons carry: the request's id and a MAC of it, nothing that decides anything."""
        return self._signer.button_value(request.id)

    def request_id_of(self, button_value: str) -> str | None:
        """The request a button names, or None when the bot did not make that value."""
        return self._signer.request_id_of(button_value)

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

    async def request_on_schedule(
        self, domain: str, *, reason: str, channel: str, origin: str, twice: bool = False
    ) -> ChangeRequest:
        """A rotation the domain's lifecycle policy asks for: requested by the bot, approved as any other."""
        ask = Ask(domain, SCHEDULER, reason, channel, origin=origin, twice=twice)
        return await self.request(Action.ROTATE, ask, scheduled=True)

    async def request_emergency_rotation(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None, origin: str = ""
    ) -> ChangeRequest:
        """Break-glass for a suspected compromise: a forced rotation now and a second once the new key is on
        every DC, each approved by the break-glass policy, and a review by two people afterwards."""
        return await self.request(Action.EMERGENCY_ROTATE, Ask(domain, requester, reason, channel, origin=origin))

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

    async def key_window(self, domain: str) -> tuple[int | None, RotationWindow]:
        """The key's version and its rotation window, from AD as the rotation's pre-flight reads them (one
        LDAP read: no module call, so the scheduler may ask every tick)."""
        server = (await self._directory(domain).read_kerberos_objects()).server
        key = server.key if server else None
        window = rotation_window(key.updated_on if key else None, self._clock(), self._rotation)
        return (key.version if key else None), window

    async def key_everywhere(self, domain: str) -> bool:
        """Every configured DC of ``domain`` holds the key AD shows now (replication done)."""
        directory = self._directory(domain)
        state = await directory.read_kerberos_objects()
        if state.server is None or state.server.key is None:
            return False
        held = await self.follow_key(
            domain, state.server.key.version, interval=timedelta(0), give_up_after=timedelta(0)
        )
        return not held.lagging

    @property
    def domains(self) -> list[str]:
        return list(self._directories)

    async def recent_for(self, domain: str, count: int = 20) -> Sequence[ChangeRequest]:
        """The domain's newest requests, newest first."""
        return await self._store.for_domain(dns_name(domain), count)

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

    def _rotates_trust(self, name: str, state: OnPremState) -> bool:
        """A rotation in a domain with the cloud trust passes -SetupCloudTrust, as the source document
        does ("the Kerberos key for your service account ... and Trusted Domain Object"); a child domain
        (its trust lives in the root) or a FIDO-only domain rotates the service account alone."""
        return state.trusted_domain is not None and self._forest_root(name) == name

    async def _plan_rotation(
        self, directory: ActiveDirectory, ask: Ask, *, force: bool, force_where_needed: bool = False
    ) -> Draft:
        """``force_where_needed`` (break-glass): -Force only while the 24-hour window has not passed."""
        name = directory.domain_dns_name
        state = await directory.read_kerberos_objects()
        server = state.server
        if server is None or server.key is None or server.krbtgt_dn is None:
            raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to rotate.")
        window = rotation_window(server.key.updated_on, self._clock(), self._rotation)
        if force_where_needed:
            force = not window.allowed_now
        if not window.allowed_now and not force:
            raise PreflightError(
                f"The key was changed at {server.key.updated_on:%Y-%m-%d %H:%M} UTC; propagation between KDCs "
                f"takes hours, so a rotation before {window.allowed_from:%Y-%m-%d %H:%M} UTC needs `--force` "
                f"({self._policies[Action.ROTATE_FORCE].approvals_required} approvals)."
            )
        tdo = state.trusted_domain if self._rotates_trust(name, state) else None
        switches = " -RotateServerKey" + (" -Force" if force else "")
        top_level_names: tuple[str, ...] = ()
        if tdo is not None:
            top_level_names = tdo.top_level_names or DEFAULT_TOP_LEVEL_NAMES
            switches = " -SetupCloudTrust" + switches
            if top_level_names != DEFAULT_TOP_LEVEL_NAMES:
                switches += f' -TopLevelNames "{",".join(top_level_names)}"'
        plan = [
            f"Set-AzureADKerberosServer -Domain {name}{switches}",
            f"AD: new random key on {server.krbtgt_dn} (unicodePwd); KeyVersion {server.key.version} grows",
            "Entra: the KerberosDomain object gets the same key (CloudKeyVersion = KeyVersion)",
        ]
        if tdo is not None:
            plan.append(
                f"AD: new keys on the trusted domain object {KERBEROS_REALM} (trustAuthIncoming, and "
                f"trustAuthOutgoing where it has one; last changed {_when(tdo.keys_updated_on)}); top-level names "
                f"kept: {', '.join(top_level_names)}"
            )
        elif state.trusted_domain is not None:
            plan.append("The trust's keys are not changed here: the cloud trust lives in the forest root")
        else:
            plan.append("No cloud trust in this domain (FIDO only): only the service account's key changes")
        plan.append("The new key takes hours to reach every KDC; the old key stays valid as the secondary key")
        if ask.twice and not ask.follows and not force_where_needed:
            approved = (
                "approved together with this one: approving this approves both"
                if ask.second_with_first
                else "with its own approvals, as this one"
            )
            plan.append(
                "Double rotation: once the 24-hour window has passed, the bot files the second rotation (its own "
                f"request, without -Force), {approved}; it retires the old key"
            )
        if ask.follows:
            plan.append(f"The second rotation of {ask.follows}: the key that one left valid stops working")
        if ask.approved_with:
            plan.append(f"Approved together with {ask.approved_with}, as the policy allows: it runs without a click")
        return Draft(tuple(plan), expected_key_version=server.key.version, top_level_names=top_level_names)

    async def _plan_normal_rotation(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        return await self._plan_rotation(directory, ask, force=False)

    async def _plan_forced_rotation(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        return await self._plan_rotation(directory, ask, force=True)

    async def _plan_emergency_rotation(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        draft = await self._plan_rotation(directory, ask, force=False, force_where_needed=True)
        if ask.follows:
            return draft
        approved = (
            "approved together with this one" if ask.second_with_first else "approved by the same policy, on its own"
        )
        steps = (
            "Break-glass: the approvers of [approvals.emergency_rotate], and the alert channel is told; -Force "
            "only while the key is less than 24 hours old",
            f"Once the new key is on every DC, the bot files the second rotation ({approved}), forced where "
            "needed, which retires the old key; then two people review what happened",
        )
        return replace(draft, plan=(*draft.plan, *steps))

    async def _plan_review(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        return Draft(
            (
                f"Acknowledge the emergency rotation {ask.follows} of {directory.domain_dns_name} and its second "
                "rotation: nothing is changed",
            )
        )

    async def _carry_out_review(self, request: ChangeRequest) -> tuple[bool, str]:
        who = ", ".join(f"<@{a.approver}>" for a in request.approvals)
        return True, f"Reviewed: the emergency rotation {request.follows} was acknowledged by {who}."

    async def _plan_tdo_removal(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        name = directory.domain_dns_name
        state = await directory.read_kerberos_objects()
        if state.trusted_domain is None:
            raise PreflightError(f"There is no trusted domain object in {name}: nothing to remove.")
        return Draft(
            (
                f"Remove-AzureADKerberosServerTrustedDomainObject -Domain {name}",
                f"AD: delete {state.trusted_domain.dn} and its trust account KERBEROS$",
                "Entra: the cloud trust is cleared (CloudTrustDisplay becomes empty)",
                "Kept: the krbtgt_AzureAD account and the AzureADKerberos computer, so FIDO sign-in keeps working; "
                "the incoming trust-based flow (Azure SQL Managed Instance) stops",
            )
        )

    def _forest_root(self, domain: str) -> str:
        return self._forest_roots.get(domain, domain)

    async def _plan_setup(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        name = directory.domain_dns_name
        root = self._forest_root(name)
        is_root = root == name
        top_level_names = check_top_level_names(ask.top_level_names) if is_root else ()
        state = await directory.read_kerberos_objects()
        if is_root and state.server is not None and state.trusted_domain is not None:
            raise PreflightError(f"{name} already has the Kerberos server and the cloud trust: nothing to set up.")
        if not is_root:
            if state.server is not None:
                raise PreflightError(f"{name} already has the Kerberos server: nothing to set up.")
            root_state = await self._directory(root).read_kerberos_objects()
            if root_state.trusted_domain is None:
                raise PreflightError(
                    f"{name} is a child domain of the forest {root}: the cloud trust is set up in the forest root "
                    f"first (`/kerberos setup {root}`), then in {name} without it. (Microsoft's module fails "
                    "otherwise with LsaCreateTrustedDomainEx 0x549.)"
                )
        switches = " -SetupCloudTrust" if is_root else ""
        if is_root and top_level_names != DEFAULT_TOP_LEVEL_NAMES:
            switches += f' -TopLevelNames "{",".join(top_level_names)}"'
        plan = [f"Set-AzureADKerberosServer -Domain {name}{switches}"]
        existing = state.server
        takeover = existing is not None and not (await self._module.get_server(name)).has_cloud
        if existing is not None and takeover:
            # one domain, one tenant: a server in AD that this tenant does not know may serve another one
            plan.insert(
                0,
                f"WARNING: AD already holds an Entra Kerberos server ({existing.display_name or 'krbtgt_AzureAD'}) "
                "that this bot's tenant does not know. A domain's Kerberos server serves one tenant: if it serves "
                "another tenant, setting it up here overwrites that tenant's trust and breaks its Kerberos. "
                "Approve only if that tenant no longer uses it (this request needs as many approvals as remove-all).",
            )
        if state.server is None:
            plan.append(f"AD: create the krbtgt_AzureAD account and the AzureADKerberos computer in {name}")
            plan.append("Entra: register the Kerberos server (KerberosDomain) with the same key")
        if is_root:
            plan.append(
                f"AD: create the inbound trusted domain object KERBEROS.MICROSOFTONLINE.COM (top-level names "
                f"{', '.join(top_level_names)}); Entra records the cloud trust"
            )
        else:
            plan.append(f"No cloud trust here: it lives in the forest root {root}")
        return Draft(tuple(plan), top_level_names=top_level_names, as_strong_as_removal=takeover)

    async def _plan_removal(self, directory: ActiveDirectory, ask: Ask) -> Draft:
        name = directory.domain_dns_name
        state = await directory.read_kerberos_objects()
        if state.server is None and state.trusted_domain is None:
            raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to remove.")
        return Draft(
            (
                f"Remove-AzureAdKerberosServer -Domain {name}",
                "AD: delete the trusted domain object (if any), the krbtgt_AzureAD account, the AzureADKerberos "
                "computer and the service connection point",
                "Entra: delete the Kerberos server object",
                "Afterwards neither FIDO sign-in nor the incoming trust-based flow works in this domain",
            )
        )

    async def _within_rate(self, bucket: str, capacity: int, per_second: float, rate: str) -> None:
        if self._limiter is None:
            return
        wait = await self._limiter.take(bucket, capacity=capacity, per_second=per_second, at=self._clock())
        if wait > 0:
            raise RateLimited(
                f"You are going faster than kerberos-bot allows ({rate}); nothing was recorded. "
                f"Try again in {max(1, round(wait))} s."
            )

    async def _click_allowed(self, user: str) -> None:
        per_minute = self._rate_limits.clicks_per_minute
        await self._within_rate(f"click:{user}", per_minute, per_minute / 60, f"{per_minute} clicks a minute")

    # -- decide -----------------------------------------------------------------------------------
    async def _approvable(self, user: str) -> frozenset[Action]:
        """The actions whose approver groups hold ``user``; the store checks the stored action against them."""
        return frozenset([a for a, p in self._policies.items() if await self._is_member(user, p.approver_groups)])

    @property
    def _verified_actions(self) -> frozenset[Action]:
        return frozenset(a for a, p in self._policies.items() if p.verified_approval)

    async def approve(
        self, request_id: str, approver: str, origin: str = "", identity: VerifiedIdentity | None = None
    ) -> DecisionResult:
        """Count an approval. Who may approve, and whether it needs a verified Entra sign-in, come from
        the stored request's action, never from the click: the store decides it in one step.
        ``origin`` is where the click came from ("<team>/<app>/<channel>"); ``identity`` is given only
        by the completed sign-in made for this approval of this request (``ApproverVerification``)."""
        if identity is None:  # the sign-in's own approval was rate-limited when its click came in
            await self._click_allowed(approver)
        allowed = await self._approvable(approver)
        at = self._clock()
        fallback = self.reminders.fallback_group
        if fallback is not None and await self._is_member(approver, frozenset({fallback})):
            # one more read, only for whoever may step in once the request escalated
            stored = await self._store.get(request_id)
            if stored is not None and await self._fallback_may_approve(approver, stored, stored.action, at):
                allowed |= {stored.action}
        verified = self._verified_actions
        mac = self._signer.approval_mac(request_id, Approval(approver, at, identity))
        result = await self._store.approve(
            request_id, approver, at, identity, mac=mac, allowed=allowed, verified_actions=verified, origin=origin
        )
        if result.request is not None and result.verdict in (Verdict.RECORDED, Verdict.APPROVED):
            kind = RequestChangeKind.APPROVED if result.verdict == Verdict.APPROVED else RequestChangeKind.APPROVAL
            await self._tell(result.request, RequestChange(kind, approver, count=result.approvals))
        return result

    async def _fallback_may_approve(self, user: str, request: ChangeRequest, action: Action, at: datetime) -> bool:
        """``user`` may approve ``request`` under ``action``'s policy at ``at`` as a member of the fallback group:
        it had escalated by then (from its signed times alone), and the action is not break-glass."""
        group, escalated = self.reminders.fallback_for(action), self.reminders.escalated_at(request)
        if group is None or escalated is None or at < escalated:
            return False
        return await self._is_member(user, frozenset({group}))

    async def due_reminders(self) -> list[Reminder]:
        """The reminders that have come due for requests still waiting for approvals, each given out once
        across every worker (the store marks it)."""
        policy, now, due = self.reminders, self._clock(), []
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

    async def awaiting(self, user: str) -> list[ChangeRequest]:
        """Pending requests ``user`` may approve and has not: in an approver group of the action (or the
        fallback group, once it escalated), never their own."""
        allowed = await self._approvable(user)
        now = self._clock()
        found = []
        for request in await self._store.pending():
            if request.requester == user or any(a.approver == user for a in request.approvals):
                continue
            if request.action in allowed or await self._fallback_may_approve(user, request, request.action, now):
                found.append(request)
        return found

    async def concerned_with(self, request: ChangeRequest) -> frozenset[str]:
        """Who a change of ``request`` concerns: its requester and whoever may approve its action (the
        fallback group too, where it escalates)."""
        groups = set(self._policies[request.action].approver_groups)
        if (fallback := self.reminders.fallback_for(request.action)) is not None:
            groups.add(fallback)
        people = {request.requester}
        for group in groups:
            people |= await self._groups.members(group)
        return frozenset(people)

    async def requested_by(self, user: str, count: int = 100) -> list[ChangeRequest]:
        """The user's own requests among the newest ``count``, newest first."""
        return [r for r in await self._store.recent(count) if r.requester == user]

    async def nudge(self, request_id: str, user: str) -> ChangeRequest:
        """The requester reminds the approvers of their pending request, once per ``nudge_every``."""
        request = await self._store.get(request_id)
        if request is None:
            raise UsageError(f"There is no request `{request_id}`; `/kerberos requests` lists them.")
        if request.requester != user:
            raise NotAllowed(f"Only the person who asked can nudge the approvers of request `{request_id}`.")
        if request.state != RequestState.PENDING or self._clock() >= request.expires_at:
            raise UsageError(f"Request `{request_id}` is not waiting for approvals any more.")
        every = self.reminders.nudge_every
        if self._limiter is not None:
            wait = await self._limiter.take(
                f"nudge:{request_id}", capacity=1, per_second=1 / every.total_seconds(), at=self._clock()
            )
            if wait > 0:
                raise RateLimited(
                    f"The approvers of `{request_id}` were nudged less than {every.total_seconds() / 60:g} minutes "
                    f"ago; try again in {max(1, round(wait / 60))} min."
                )
        await self._store.note(request_id, "nudged", user, "the requester reminded the approvers", self._clock())
        return request

    async def refuse_unverified(self, request_id: str, approver: str, why: str) -> None:
        """Audit an approval whose Entra sign-in did not verify the approver; nothing else changes."""
        await self._store.refuse(request_id, approver, f"verification failed: {why}", self._clock())

    async def deny(self, request_id: str, approver: str, reason: str, origin: str = "") -> DecisionResult:
        await self._click_allowed(approver)
        allowed = await self._approvable(approver)
        result = await self._store.deny(request_id, approver, reason, self._clock(), allowed=allowed, origin=origin)
        if result.verdict == Verdict.DENIED and result.request is not None:
            await self._tell(result.request, RequestChange(RequestChangeKind.DENIED, approver, reason))
        return result

    async def expire_due(self) -> list[ChangeRequest]:
        expired = []
        for request_id in await self._store.expire_due(self._clock()):
            request = await self._store.get(request_id)
            if request is not None:
                expired.append(request)
                await self._tell(request, RequestChange(RequestChangeKind.EXPIRED, detail=request.outcome or ""))
        return expired

    async def card_posted(self, request_id: str, channel: str, message_ts: str) -> None:
        await self._store.set_message(request_id, channel, message_ts)
        if (request := await self._store.get(request_id)) is not None:
            await self._tell(request, RequestChange(RequestChangeKind.POSTED))

    def add_watcher(self, watcher: RequestWatcher) -> None:
        """Someone who hears every change of every request's state (the requesters' direct messages)."""
        self._watchers.append(watcher)

    async def _tell(self, request: ChangeRequest, change: RequestChange) -> None:
        self._telling += 1
        try:
            for watcher in self._watchers:
                try:
                    await watcher.request_changed(request, change)
                except Exception:  # a watcher's failure is its own: the request goes on as it was
                    log.warning("telling a watcher that %s is %s failed", request.id, change.kind.value, exc_info=True)
        finally:
            self._telling -= 1

    async def drain(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout`` seconds) until no watcher is being told anything: before the bot closes
        its connections, so that a direct message or a home page in flight still reads what it needs."""
        deadline = time.monotonic() + timeout
        # polled, not an asyncio.Event: the service outlives an event loop in the tests, an Event binds to one
        while self._telling and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return not self._telling

    async def get(self, request_id: str) -> ChangeRequest | None:
        return await self._store.get(request_id)

    async def cancel(self, request_id: str, requester: str) -> DecisionResult:
        """The requester withdraws a pending request; an approved one still waiting for its change window may
        be withdrawn by its requester or by anyone who may approve its action (a scheduled one has no person
        as requester)."""
        result = await self._store.cancel(request_id, requester, self._clock())
        waiting = result.request
        if result.verdict not in (Verdict.NOT_PENDING, Verdict.NOT_REQUESTER) or waiting is None:
            return result
        if waiting.state != RequestState.APPROVED or waiting.waits_until is None:
            return result
        policy = self._policies[waiting.action]
        if waiting.requester != requester and not await self._is_member(requester, policy.approver_groups):
            return DecisionResult(Verdict.NOT_REQUESTER, waiting, len(waiting.approvals))
        withdrawn = await self._store.withdraw(request_id, requester, self._clock())
        if withdrawn.verdict == Verdict.CANCELLED and withdrawn.request is not None and requester != waiting.requester:
            await self._tell(withdrawn.request, RequestChange(RequestChangeKind.CANCELLED, requester))
        return withdrawn

    # -- execute ----------------------------------------------------------------------------------
    async def execute_next(self, consumer: str, block_ms: int = 0) -> Execution | Deferral | None:
        """Claim one approved request and carry it out; at most once, whatever happens. One approved outside
        its domain's change window goes back to wait for it (``Deferral``), where the policy says so."""
        claim = await self._store.claim_next(consumer, self._limits.lease, self._clock(), block_ms)
        if claim is None:
            return None
        request = claim.request
        REQUEST_ID.set(f"change-{request.id}")  # the worker's log lines carry the change request
        SLACK_USER.set(request.requester)
        heartbeat = asyncio.create_task(self._keep_lease(claim), name=f"lease-{request.id}")
        started = time.perf_counter()
        try:
            done_or_deferred = await self._execute(claim)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self._module_called.discard(request.id)
        if isinstance(done_or_deferred, Deferral):
            log.info("request %s waits for the change window of %s", request.id, request.domain)
            runs_at = done_or_deferred.windows.local(done_or_deferred.runs_at)
            await self._tell(done_or_deferred.request, RequestChange(RequestChangeKind.WAITING, detail=runs_at))
            return done_or_deferred
        state, outcome = done_or_deferred
        word = state.value
        self.metrics.action_seconds.labels(request.action.value, word).observe(time.perf_counter() - started)
        self.metrics.requests_finished.labels(request.action.value, word).inc()
        log.info("request %s (%s %s) %s", request.id, request.action.value, request.domain, word)
        await self._step(request, f"finished: {word}")
        finished = await self._store.finish(claim, state, outcome, self._clock())
        if finished == FinishResult.LATE:
            log.error("request %s finished (%s) after its lease lapsed and it was flagged", request.id, word)
        done = await self._store.get(request.id)
        new_version = None
        if state == RequestState.SUCCEEDED and request.action in KEY_ROTATIONS:
            server = (await self._directory(request.domain).read_kerberos_objects()).server
            new_version = server.key.version if server and server.key else None
        finished_as = {
            RequestState.SUCCEEDED: RequestChangeKind.SUCCEEDED,
            RequestState.FAILED: RequestChangeKind.FAILED,
        }
        kind = finished_as.get(state, RequestChangeKind.ATTENTION)
        await self._tell(done or request, RequestChange(kind, detail=outcome))
        return Execution(done or request, state == RequestState.SUCCEEDED, outcome, new_version)

    async def _execute(self, claim: Claim) -> tuple[RequestState, str] | Deferral:
        request = claim.request
        claimed_at = self._clock()
        try:
            await self._step(request, f"claimed by {request.claimed_by or '?'}")
            await self._step(request, f"claim durable: {await self._store.make_durable()}")
            await self._revalidate(request)
            await self._step(request, "re-validated against the stored policy")
            if (deferral := await self._defer_to_window(claim)) is not None:
                return deferral
        except ForgedRecord as exc:
            log.error("request %s: %s", request.id, exc.user_message)
            return RequestState.ATTENTION, f"Refused: {exc.user_message}"
        except KerberosBotError as exc:
            return RequestState.FAILED, f"Not started: {exc.user_message}"
        timeout = self._limits.change_timeout
        try:
            succeeded, outcome = await asyncio.wait_for(self._carry_out(request), timeout.total_seconds())
            state = RequestState.SUCCEEDED if succeeded else RequestState.FAILED
        except ForgedRecord as exc:
            log.error("request %s: %s", request.id, exc.user_message)
            state, outcome = RequestState.ATTENTION, f"Refused: {exc.user_message}"
        except TimeoutError:
            minutes = timeout.total_seconds() / 60
            state, outcome = (
                RequestState.ATTENTION,
                (
                    f"Needs attention: the change did not finish within {minutes:g} minutes and was stopped; "
                    "what it changed is not known."
                ),
            )
        except KerberosBotError as exc:
            state, outcome = RequestState.FAILED, f"Failed: {exc}"
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("executing request %s failed (ref %s)", request.id, ref)
            state, outcome = (
                RequestState.FAILED,
                f"Failed with an unexpected error (reference {ref}); see the bot's log.",
            )
        if state != RequestState.SUCCEEDED and request.id in self._module_called:
            found = await self._inventory(request)
            await self._step(request, f"found after the failure: {found}")
            outcome = f"{outcome} {found}"
        if state == RequestState.SUCCEEDED and (overridden := self._overridden_holds(request, claimed_at)):
            outcome = f"{outcome} {overridden}"
        return state, outcome

    def now(self) -> datetime:
        """The service's clock (the one its rules read)."""
        return self._clock()

    def approvals_channel_of(self, domain: str) -> str | None:
        """The channel the domain's requests are approved in, when its configuration names one."""
        return self._approval_channels.get(dns_name(domain))

    def windows_of(self, domain: str) -> ChangeWindows:
        """The domain's change windows (always open, when the configuration gives none)."""
        return self._windows.get(dns_name(domain), ALWAYS_OPEN)

    async def _defer_to_window(self, claim: Claim) -> Deferral | None:
        """Outside the domain's change window: back to the store until it opens (policy ``wait``), or
        refused (``refuse``); break-glass is not held. None: it runs now."""
        request = claim.request
        windows = self.windows_of(request.domain)
        now = self._clock()
        if ACTION_KINDS[request.action].overrides_holds or windows.open_at(now):
            return None
        opening = windows.next_opening(now)
        if windows.outside is OutsideWindow.REFUSE or opening is None:
            raise RefusedAtExecution(
                f"it was approved outside the change window of {request.domain} ({windows.describe()}), and the "
                "domain's policy refuses such changes. Request it again so that it is approved within a window"
            )
        note = (
            f"Approved outside the change window ({windows.describe()}): it waits, and runs when the window opens, "
            f"{windows.local(opening)}."
        )
        await self._step(request, f"waits for the change window: runs at {opening.isoformat()}")
        if not await self._store.defer(claim, opening, self._signer.wait_mac(request.id, opening), note, now):
            log.error("request %s could not be put back to wait for its window (its claim was lost)", request.id)
        return Deferral(await self._store.get(request.id) or request, opening, windows)

    def _overridden_holds(self, request: ChangeRequest, at: datetime) -> str:
        """What break-glass ran past, said on its outcome: a closed change window (a freeze says so itself)."""
        windows = self.windows_of(request.domain)
        if request.action not in KEY_ROTATIONS or not ACTION_KINDS[request.action].overrides_holds:
            return ""
        if windows.open_at(at):
            return ""
        return f"Break-glass: it ran outside the change window of {request.domain} ({windows.describe()})."

    def timing_of(self, request: ChangeRequest) -> str | None:
        """When an undecided request would run, as its card says it: the change window open or closed now,
        and what happens to a change approved outside it. None: nothing to say (no windows, or decided)."""
        windows = self.windows_of(request.domain)
        if not windows.windows or request.state not in (RequestState.PENDING, RequestState.APPROVED):
            return None
        if request.waits_until is not None:
            return None  # its outcome says when it runs
        if ACTION_KINDS[request.action].overrides_holds:
            if request.action not in KEY_ROTATIONS:
                return None
            return f"Break-glass: it runs once approved, whatever the change window ({windows.describe()})."
        now = self._clock()
        if windows.open_at(now):
            closes = windows.closes_after(now)
            until = f", until {windows.local(closes)}" if closes else ""
            return f"Change window {windows.describe()}: open now{until}."
        opening = windows.next_opening(now)
        if windows.outside is OutsideWindow.REFUSE or opening is None:
            return (
                f"Change window {windows.describe()}: closed now. A change approved outside it is refused (the "
                "domain's policy): approve it within a window."
            )
        return (
            f"Change window {windows.describe()}: closed now. Approved before it opens, it waits and runs at "
            f"{windows.local(opening)}."
        )

    async def _keep_lease(self, claim: Claim) -> None:
        """Renew the lease while the change runs, never past its timeout (so a hung change loses the lock)."""
        limits = self._limits
        stop_at = time.monotonic() + (limits.change_timeout + limits.lease).total_seconds()
        while time.monotonic() < stop_at:
            await asyncio.sleep(limits.renew_every.total_seconds())
            try:
                renewed = await self._store.renew(claim, limits.lease, self._clock())
            except KerberosBotError:
                log.warning("could not renew the lease of request %s; trying again", claim.request.id)
                continue
            if renewed is None:
                log.error("request %s lost its lease: it may be flagged while still running", claim.request.id)
                return
            claim = renewed

    async def _inventory(self, request: ChangeRequest) -> str:
        """What exists now in AD and Entra, and how to clean up, after a change that failed mid-way."""
        try:
            async with asyncio.timeout(self._limits.inventory_timeout.total_seconds()):
                on_prem = await self._directory(request.domain).read_kerberos_objects()
                cloud = await self._module.get_server(request.domain)
        except (KerberosBotError, TimeoutError) as exc:
            why = exc.user_message if isinstance(exc, KerberosBotError) else "no answer in time"
            return f"What exists now could not be read ({why.rstrip('.')}); run `/kerberos status {request.domain}`."
        server = on_prem.server
        have = {
            "the krbtgt_AzureAD account": server is not None and server.krbtgt_dn is not None,
            "the AzureADKerberos computer": server is not None and server.computer_dn is not None,
            "the trusted domain object": on_prem.trusted_domain is not None,
            "Entra's Kerberos server object": cloud.has_cloud,
            "Entra's cloud trust": bool(cloud.cloud_trust_display),
        }
        present = [name for name, there in have.items() if there]
        missing = [name for name, there in have.items() if not there]
        text = (
            f"Now in {request.domain}: {', '.join(present) or 'none of the Kerberos objects'}"
            f"{'; missing: ' + ', '.join(missing) if missing and present else ''}."
        )
        if have["the trusted domain object"] and not have["Entra's cloud trust"]:
            text += (
                f" The trust exists in AD only: remove it with `/kerberos remove-tdo {request.domain}` "
                "before setting up again."
            )
        elif present and not all(have.values()) and request.action in (Action.SETUP, Action.REMOVE_ALL):
            text += f" To start clean: `/kerberos remove-all {request.domain}`, then set up again."
        elif (
            server is not None and server.key is not None and cloud.cloud_key_version not in (None, server.key.version)
        ):
            text += " KeyVersion and CloudKeyVersion differ: a forced rotation brings them in step."
        return text

    async def follow_key(
        self,
        domain: str,
        key_version: int,
        *,
        interval: timedelta,
        give_up_after: timedelta,
        on_progress: Callable[[KeyPropagation], Awaitable[None]] | None = None,
    ) -> KeyPropagation:
        """Read the key on every configured DC until all hold ``key_version`` or the time is up;
        ``on_progress`` hears each time more DCs hold it while others still lag."""
        directory = self._directory(domain)
        started = self._clock()
        told: set[str] = set()
        while True:
            versions = await directory.read_key_versions_per_dc()
            agreed = tuple(dc for dc, v in versions.items() if v is not None and v >= key_version)
            lagging = tuple(dc for dc in versions if dc not in agreed)
            waited = self._clock() - started
            progress = KeyPropagation(key_version, agreed, lagging, waited)
            if not lagging or waited >= give_up_after:
                return progress
            if on_progress is not None and set(agreed) != told:
                told = set(agreed)
                await on_progress(progress)
            await asyncio.sleep(interval.total_seconds())

    async def _not_frozen(self, domain: str, action: Action, *, refused: type[KerberosBotError] = UsageError) -> None:
        """A frozen domain takes no change but break-glass (which says it overrides the freeze)."""
        if self._freezes is None or ACTION_KINDS[action].overrides_holds:
            return
        freeze = await self._freezes.get(domain, self._clock())
        if freeze is not None:
            raise refused(
                # the reason is a person's text: it stays out of a message that renders as markup
                f"{domain} is frozen until {freeze.until:%Y-%m-%d %H:%M} UTC (by {freeze.by}); no change runs "
                "there until then but an emergency rotation"
            )

    async def freeze(self, domain: str, *, by: str, until: datetime, reason: str) -> Freeze:
        """Freeze a domain: anyone who may approve a change there may stop changes there."""
        name = self._directory(domain).domain_dns_name
        if self._freezes is None:
            raise KerberosBotError("Freezes need the approval store (REDIS_URL).")
        if not reason.strip():
            raise UsageError(f"Say why, after `--`: `/kerberos freeze {name} <until> -- <reason>`.")
        if not await self._is_member(by, self._every_approver_group):
            raise NotAllowed("Only members of an approver group may freeze a domain.")
        now = self._clock()
        if until <= now:
            raise UsageError("Give a time in the future for the freeze to end.")
        freeze = Freeze(name, until, by, reason.strip(), now)
        await self._freezes.put(freeze)
        return freeze

    async def thaw(self, domain: str, *, by: str) -> bool:
        name = self._directory(domain).domain_dns_name
        if self._freezes is None:
            return False
        if not await self._is_member(by, self._every_approver_group):
            raise NotAllowed("Only members of an approver group may end a freeze.")
        return await self._freezes.remove(name)

    @property
    def _every_approver_group(self) -> frozenset[str]:
        """Who may approve any action: they may stop changes in a domain (and end that stop)."""
        return frozenset().union(*(p.approver_groups for p in self._policies.values()))

    async def freeze_of(self, domain: str) -> Freeze | None:
        if self._freezes is None:
            return None
        return await self._freezes.get(self._directory(domain).domain_dns_name, self._clock())

    async def _step(self, request: ChangeRequest, step: str) -> None:
        await self._store.record_step(request.id, step, self._clock())

    async def _revalidate(self, request: ChangeRequest) -> None:
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
                f"{what} does not carry the bot's signature: something other than the bot wrote to the approval "
                "store. Nothing was changed; the record is kept for investigation."
            )
        if stored.approved_with is None:
            await self._check_approvals(stored, stored.action, stored.approvals_required)
        else:  # the first's approvals, by the first's policy and by this one's alike
            first = await self._first_of(stored)
            await self._check_approvals(first, first.action, first.approvals_required)
            await self._check_approvals(first, stored.action, stored.approvals_required)
        # from the signed times only: the last approval's (or, approved with its first, its filing), or the
        # change window's opening it was deferred to
        approved = max((a.at for a in stored.approvals), default=stored.created_at)
        since = max(approved, stored.waits_until or approved)
        if self._clock() - since > stored.time_to_live:
            raise RefusedAtExecution("it waited for a worker longer than its time to live")
        await self._not_frozen(stored.domain, stored.action, refused=RefusedAtExecution)

    async def _first_of(self, second: ChangeRequest) -> ChangeRequest:
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
            or not self._policies[first.action].second_with_first
        ):
            raise RefusedAtExecution(
                f"it was approved together with {first.id}, but that is not a finished double rotation of "
                f"{second.domain} whose approvals cover its second rotation under the policy now"
            )
        return first

    async def _check_approvals(self, stored: ChangeRequest, action: Action, required: int) -> None:
        """``stored``'s approvals hold up under the policy of ``action`` now, ``required`` of them (the number
        signed in the request, which may not be below the policy's)."""
        policy = self._policies[action]
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
            if approval.approver == stored.requester or (
                approval.identity and stored.requester_upn and approval.identity.upn.lower() == stored.requester_upn
            ):
                raise RefusedAtExecution("the requester is among its approvers")
            if not await self._is_member(
                approval.approver, policy.approver_groups
            ) and not await self._fallback_may_approve(approval.approver, stored, action, approval.at):
                raise RefusedAtExecution(f"<@{approval.approver}> is no longer in an approver group")
            if policy.verified_approval and (approval.identity is None or not approval.identity.mfa):
                raise RefusedAtExecution(
                    f"the approval by <@{approval.approver}> has no verified Entra sign-in with MFA"
                )

    async def _module_call(self, request: ChangeRequest, cmdlet: str, call: Awaitable[T]) -> T:
        """Journal around the one step that changes AD and Entra, so a crash inside it is visible later.
        The request is re-validated right before: nothing that changed in the store since the claim counts."""
        try:
            await self._revalidate(request)
        except BaseException:
            if asyncio.iscoroutine(call):
                call.close()  # never awaited: no "coroutine was never awaited" warning
            raise
        await self._step(request, f"module call started: {cmdlet}")
        self._module_called.add(request.id)
        result = await call
        await self._step(request, f"module call returned: {cmdlet}")
        return result

    async def recover(self) -> list[ChangeRequest]:
        """Flag requests whose worker died mid-action (their lease lapsed); never run them again.
        Every change worker calls this on each sweep, so a crash is flagged within a lease."""
        flagged = []
        for request in await self._store.executing():
            steps = [line.split(" ", 1)[1] for line in request.journal]
            started = any(s.startswith("module call started") for s in steps)
            returned = any(s.startswith("module call returned") for s in steps)
            if started and not returned:
                advice = (
                    "The worker stopped inside the module call: AD may be changed and Entra not (or the other way "
                    f"round). Run `/kerberos status {request.domain}` and, if the key versions differ, a forced "
                    "rotation."
                )
            elif returned:
                advice = (
                    f"The change was made; it was not verified. Run `/kerberos status {request.domain}` to check it."
                )
            else:
                advice = "The worker stopped before changing anything. Request it again if it is still needed."
            note = f"Needs attention: {advice} Steps recorded: {'; '.join(steps) or 'none'}."
            if await self._store.flag_if_abandoned(request.id, note, self._clock()):
                log.warning("request %s: its worker stopped renewing its lease; flagged", request.id)
                flagged.append(done := await self._store.get(request.id) or request)
                await self._tell(done, RequestChange(RequestChangeKind.ATTENTION, detail=note))
        return flagged

    async def sweep(self) -> int:
        """Forget finished requests and audit entries older than their retention."""
        limits = self._limits
        return await self._store.sweep(self._clock(), limits.request_retention, limits.audit_retention)

    async def _carry_out(self, request: ChangeRequest) -> tuple[bool, str]:
        spec = ACTION_SPECS.get(request.action)
        if spec is None:  # an action added to the enum without a spec must never fall through to another
            raise LookupError(f"no carry-out for action {request.action!r}")
        return await spec.carry_out(self, request)

    async def _carry_out_tdo_removal(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        if (await directory.read_kerberos_objects()).trusted_domain is None:
            return False, "Stopped: the trusted domain object is already gone; nothing was changed."
        cmdlet = "Remove-AzureADKerberosServerTrustedDomainObject"
        await self._module_call(request, cmdlet, self._module.remove_trusted_domain_object(request.domain))
        after = await directory.read_kerberos_objects()
        if after.trusted_domain is not None:
            return False, "The module reported success but the trusted domain object is still in AD."
        if after.server is None:
            return False, "The trusted domain object is gone, but so is the Kerberos server: FIDO sign-in stops."
        return True, (
            "Removed the trusted domain object. The Entra Kerberos server stays, so FIDO sign-in keeps working; "
            "the incoming trust-based flow for Azure SQL Managed Instance no longer does."
        )

    async def _carry_out_setup(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        is_root = self._forest_root(request.domain) == request.domain
        before = await directory.read_kerberos_objects()
        if before.server is not None and (before.trusted_domain is not None or not is_root):
            return False, "Stopped: it is already set up; nothing was changed."
        options = SetServerOptions(setup_cloud_trust=is_root, top_level_names=request.top_level_names or None)
        report = await self._module_call(
            request, "Set-AzureADKerberosServer", self._module.set_server(request.domain, options)
        )
        after = await directory.read_kerberos_objects()
        if after.server is None or (is_root and after.trusted_domain is None):
            return False, "The module reported success but the objects are not all in AD."
        if report.key_version != report.cloud_key_version:
            return False, f"Set up, but KeyVersion {report.key_version} != CloudKeyVersion {report.cloud_key_version}."
        trust = (
            f" and the cloud trust (top-level names {', '.join(after.trusted_domain.top_level_names)})"
            if after.trusted_domain is not None
            else ""
        )
        return True, (
            f"Set up the Entra Kerberos server (ID {report.id}, KeyVersion {report.key_version}){trust}. "
            "Microsoft recommends a forced rotation right after creating the trusted domain object."
        )

    async def _carry_out_removal(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        before = await directory.read_kerberos_objects()
        if before.server is None and before.trusted_domain is None:
            return False, "Stopped: there is nothing left to remove; nothing was changed."
        await self._module_call(request, "Remove-AzureAdKerberosServer", self._module.remove_server(request.domain))
        after = await directory.read_kerberos_objects()
        report = await self._module.get_server(request.domain)
        if after.server is not None or after.trusted_domain is not None or report.has_cloud:
            return False, "The module reported success but objects remain; check `/kerberos status`."
        return (
            True,
            "Removed all Kerberos settings: the trusted domain object, the service account, the computer "
            "object and the Entra object. FIDO sign-in and the trust-based flow no longer work in this domain.",
        )

    async def _carry_out_rotation(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        before = await directory.read_kerberos_objects()
        key = before.server.key if before.server else None
        if key is None:
            return False, "Stopped: the Kerberos server is gone since the request; nothing was changed."
        if request.expected_key_version is not None and key.version != request.expected_key_version:
            return False, (
                f"Stopped: the key changed since the request (KeyVersion {request.expected_key_version} -> "
                f"{key.version}); nothing was changed."
            )
        with_trust = self._rotates_trust(request.domain, before)
        # break-glass forces only where the 24-hour rule needs it; a forced rotation always
        needs_force = not rotation_window(key.updated_on, self._clock(), self._rotation).allowed_now
        options = SetServerOptions(
            rotate_server_key=True,
            force=request.action == Action.ROTATE_FORCE or (request.action == Action.EMERGENCY_ROTATE and needs_force),
            setup_cloud_trust=with_trust,
            top_level_names=(request.top_level_names or None) if with_trust else None,
        )
        await self._step(request, f"re-validated: KeyVersion {key.version}")
        report = await self._module_call(
            request, "Set-AzureADKerberosServer -RotateServerKey", self._module.set_server(request.domain, options)
        )
        after = await directory.read_kerberos_objects()
        new_key = after.server.key if after.server else None
        if new_key is None or new_key.version == key.version:
            return False, "The module reported success but AD still holds the old key."
        if report.key_version != report.cloud_key_version:
            return False, (
                f"Rotated in AD (KeyVersion {new_key.version}) but Entra shows CloudKeyVersion "
                f"{report.cloud_key_version}: Kerberos for cloud users breaks until they match. Rotate with --force."
            )
        trust = ""
        if with_trust:
            old_tdo, new_tdo = before.trusted_domain, after.trusted_domain
            was = old_tdo.keys_updated_on if old_tdo else None
            now = new_tdo.keys_updated_on if new_tdo else None
            # proven by the TDO's replication metadata (its version grows with every change, even
            # within the second its time shows), not by the call's status: Samba answers OK to LSA sets
            # that change nothing
            old_change = old_tdo.keys_change if old_tdo else None
            new_change = new_tdo.keys_change if new_tdo else None
            if old_change is not None and new_change is not None:
                unchanged = new_change == old_change
            else:
                unchanged = was is not None and (now is None or now <= was)
            if new_tdo is None or unchanged:
                return False, (
                    f"Rotated the service account's key (KeyVersion {key.version} -> {new_key.version}), but the "
                    f"trusted domain object's keys did not change (last changed {_when(was)}): the trust-based "
                    "flow keeps the old trust keys. Check the module's output on the management host."
                )
            trust = f" The trusted domain object has new keys too (changed {_when(now)})."
        if request.twice:
            then = "the bot files the second rotation once the 24-hour window has passed, to retire it."
        elif request.follows:
            then = f"with this second rotation (after {request.follows}) the key before it is retired."
        else:
            then = "rotate again after 24 hours to retire it fully."
        return True, (
            f"Rotated: KeyVersion {key.version} -> {new_key.version}, CloudKeyVersion "
            f"{report.cloud_key_version}.{trust} "
            f"The new key takes several hours to reach every KDC. The old key stays valid as the secondary key; {then}"
        )

    async def pending_or_recent(self, count: int = 20) -> list[ChangeRequest]:
        return list(await self._store.recent(count))


Preflight = Callable[[ChangeService, ActiveDirectory, Ask], Awaitable[Draft]]
CarryOut = Callable[[ChangeService, ChangeRequest], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class ActionSpec:
    """One action, whole: its kind (title, configuration key, default policy), its pre-flight and plan,
    and its carry-out."""

    kind: ActionKind
    preflight: Preflight = field(repr=False)
    carry_out: CarryOut = field(repr=False)

    @property
    def action(self) -> Action:
        return self.kind.action


ACTION_SPECS: dict[Action, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(ACTION_KINDS[Action.ROTATE], ChangeService._plan_normal_rotation, ChangeService._carry_out_rotation),
        ActionSpec(
            ACTION_KINDS[Action.ROTATE_FORCE], ChangeService._plan_forced_rotation, ChangeService._carry_out_rotation
        ),
        ActionSpec(
            ACTION_KINDS[Action.REMOVE_TDO], ChangeService._plan_tdo_removal, ChangeService._carry_out_tdo_removal
        ),
        ActionSpec(ACTION_KINDS[Action.SETUP], ChangeService._plan_setup, ChangeService._carry_out_setup),
        ActionSpec(ACTION_KINDS[Action.REMOVE_ALL], ChangeService._plan_removal, ChangeService._carry_out_removal),
        ActionSpec(
            ACTION_KINDS[Action.EMERGENCY_ROTATE],
            ChangeService._plan_emergency_rotation,
            ChangeService._carry_out_rotation,
        ),
        ActionSpec(ACTION_KINDS[Action.EMERGENCY_REVIEW], ChangeService._plan_review, ChangeService._carry_out_review),
    )
}
