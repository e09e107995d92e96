"""Change requests and their approval: the states, the rules, and the store's port.

    pending ──approve (enough distinct approvers)──▶ approved ──claim (+ lease, domain lock)──▶ executing
       │                                                │                                        │
       ├──deny──▶ denied   ├──expire──▶ expired          └─ waited longer than its TTL ─▶ expired  │
       └──cancel (requester)──▶ cancelled                                                         │
    executing ──▶ succeeded | failed | attention (the change timed out: its outcome is unknown)
        ├── lease lapsed (the worker died) ──recovery──▶ attention (never run again)
        ├── outside its domain's change window ──defer──▶ approved, waiting until it opens (withdraw ──▶ cancelled)
        └── operator-executes mode ──hand over──▶ with_operator ──verified──▶ succeeded
                                                     └─ another effect, someone else's, none ─▶ attention | failed

A second rotation approved together with its first (its policy's ``second_with_first``) is created
approved; the worker judges it by the first's signed approvals.

Every transition is made by the store atomically; the rules the store enforces are stated here so
the in-memory fake and the Redis adapter implement the same contract (tests/contracts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.domain.history import HistoryEntry
from bot.domain.verification import VerifiedIdentity

# Each replica reads Redis's clock through an offset it measured (to within half a round trip), so two
# replicas' readings of one moment may differ by that much: an approval taken by one replica may be dated a
# little before the filing the other recorded. Far more than the measurement's error, far less than a forgery
# would need to matter (an approval is signed for its request and counts only within its life).
REPLICA_CLOCK_SKEW = timedelta(seconds=2)


class Action(enum.Enum):
    """A changing action; its value is its key in the configuration (``[approvals.<value>]``) and the store."""

    ROTATE = "rotate"
    ROTATE_FORCE = "rotate_force"
    REMOVE_TDO = "remove_tdo"
    SETUP = "setup"
    REMOVE_ALL = "remove_all"
    EMERGENCY_ROTATE = "emergency_rotate"  # break-glass: a suspected compromise
    EMERGENCY_REVIEW = "emergency_review"  # filed by the bot after an emergency rotation: people acknowledge it

    @classmethod
    def _missing_(cls, value: object) -> Action | None:
        # records written before the values became the configuration keys ("rotate --force", "remove-all"):
        # still readable, and flagged when carried out, since their MAC covers the old spelling
        legacy = {"rotate --force": cls.ROTATE_FORCE, "remove-tdo": cls.REMOVE_TDO, "remove-all": cls.REMOVE_ALL}
        return legacy.get(str(value))


# the actions that give the domain a new key (what the scheduler and the key's follow-up look for)
KEY_ROTATIONS = frozenset({Action.ROTATE, Action.ROTATE_FORCE, Action.EMERGENCY_ROTATE})
# the rotations that can be double rotations, whose second rotation may be approved together with them
DOUBLE_ROTATIONS = KEY_ROTATIONS


@dataclass(frozen=True)
class ActionKind:
    """What every layer says of an action: its title on the card, what a person types for it, and the
    policy it gets when the configuration says nothing (the dangerous ones: two verified approvers)."""

    action: Action
    title: str
    command: str  # after /kerberos, without the domain and the reason
    default_approvals: int
    default_verified: bool
    # break-glass: approved only by its own approver_groups (never the default ones), and off until it has them
    own_approvers: bool = False
    # break-glass, and its review (which changes nothing): neither a freeze nor a change window holds it
    overrides_holds: bool = False
    on_form: bool = False  # the request form offers it (break-glass is typed; a review is filed by the bot)
    # after the last reminder the fallback group may approve it too, unless its table says otherwise: only the
    # everyday rotation by default (a removal or a setup stays with the approvers its policy names)
    escalates: bool = False
    config_note: str = ""  # what its [approvals.<config_key>] table says beyond the common keys

    @property
    def typed(self) -> str | None:
        """The subcommand a person types for it (``rotate`` for ``rotate --force``); None: filed by the bot."""
        return None if self.command.startswith("(") else self.command.split()[0]

    @property
    def config_key(self) -> str:
        """Its table in the configuration, ``[approvals.<config_key>]``."""
        return self.action.value


ACTION_KINDS: dict[Action, ActionKind] = {
    kind.action: kind
    for kind in (
        ActionKind(Action.ROTATE, "Rotate the Kerberos key", "rotate", 1, False, on_form=True, escalates=True),
        # on the form as rotate's --force option
        ActionKind(Action.ROTATE_FORCE, "Rotate the Kerberos key (forced, within 24 hours)", "rotate --force", 2, True),
        ActionKind(Action.REMOVE_TDO, "Remove the trusted domain object", "remove-tdo", 2, True, on_form=True),
        # setup creates an inbound trust in a forest root: as strong as the removals
        ActionKind(Action.SETUP, "Set up the cloud trust", "setup", 2, True, on_form=True),
        ActionKind(Action.REMOVE_ALL, "Remove all Kerberos settings", "remove-all", 2, True, on_form=True),
        # break-glass: one verified approver from its own group (no default group: it must be configured)
        ActionKind(
            Action.EMERGENCY_ROTATE,
            "Emergency rotation (suspected compromise)",
            "emergency-rotate",
            1,
            True,
            own_approvers=True,
            overrides_holds=True,
            config_note="break-glass: its approver_groups (a break-glass group) must be set; "
            "default_approver_groups do not apply",
        ),
        ActionKind(
            Action.EMERGENCY_REVIEW,
            "Review of an emergency rotation",
            "(filed by the bot)",
            2,
            False,
            overrides_holds=True,
        ),
    )
}


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
    WITH_OPERATOR = "with_operator"  # handed to an operator to run; the bot verifies what they did

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
    # a double rotation's approvals approve its second rotation too (rotations only): no second round of clicks
    second_with_first: bool = False


@dataclass(frozen=True)
class ReminderPolicy:
    """When approvers are reminded of an undecided request, and where it escalates after the last reminder."""

    at: tuple[float, ...] = (0.5, 0.9)  # fractions of each request's time to live, in order
    fallback_group: str | None = None  # after the last reminder, its members may approve too (not break-glass)
    fallback_channel: str | None = None  # after the last reminder, a note with the card's link goes there
    nudge_every: timedelta = timedelta(hours=1)  # the requester may nudge the approvers once per this
    # the actions the fallback group may approve once a request escalated (never break-glass)
    escalating: frozenset[Action] = field(
        default_factory=lambda: frozenset(a for a, k in ACTION_KINDS.items() if k.escalates and not k.own_approvers)
    )

    def points_passed(self, request: ChangeRequest, at: datetime) -> int:
        """How many reminder points of ``request`` have come by ``at``."""
        return sum(1 for f in self.at if request.created_at + request.time_to_live * f <= at)

    def escalated_at(self, request: ChangeRequest) -> datetime | None:
        """When ``request`` escalates (its last reminder), from its signed times alone; None: it never does."""
        if not self.at or (self.fallback_group is None and self.fallback_channel is None):
            return None
        return request.created_at + request.time_to_live * self.at[-1]

    def fallback_for(self, action: Action) -> str | None:
        """The group that may approve ``action`` once a request escalates; None for an action that does not
        escalate (break-glass keeps its own approvers whatever is configured)."""
        if ACTION_KINDS[action].own_approvers or action not in self.escalating:
            return None
        return self.fallback_group


@dataclass(frozen=True)
class Freeze:
    """No change runs in a domain until ``until`` (but break-glass): who froze it, when and why."""

    domain: str
    until: datetime
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Approval:
    approver: str
    at: datetime
    identity: VerifiedIdentity | None = None  # the Entra sign-in behind it, for verified approvals
    mac: str = ""  # bot.domain.integrity: proves the bot recorded it


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
    card: str | None = None  # where its card is, as the chat that posted it names it (opaque to the core)
    outcome: str | None = None  # what execution reported
    expected_key_version: int | None = None  # KeyVersion when requested; the worker re-checks it
    journal: tuple[str, ...] = ()  # the execution's steps, in order, each "<time> <step>" (its history's steps)
    top_level_names: tuple[str, ...] = ()  # setup: -TopLevelNames
    approved_at: datetime | None = None
    claimed_by: str | None = None  # the worker that carries it out
    origin: str = ""  # "<team>/<app>/<channel>" it was requested in: clicks count only from there
    requester_upn: str | None = None  # the requester's Entra account, where it can be told: never an approver
    # the requester's Entra object id, resolved when the request is made: whichever names an approver's sign-in
    # carries, that person is never an approver of it
    requester_oid: str | None = None
    twice: bool = False  # a double rotation: the second is filed once the 24-hour window has passed
    follows: str | None = None  # the second rotation of a double rotation: the first's id
    # a double rotation whose approvals approve its second rotation too (its policy said so when requested)
    second_with_first: bool = False
    # the second rotation approved together with the first: the first's id (it was filed approved, no clicks)
    approved_with: str | None = None
    mac: str = ""  # bot.domain.integrity: proves the bot wrote the record
    # approved outside its domain's change window: it waits for a worker until then (with the bot's MAC of it)
    waits_until: datetime | None = None
    waits_mac: str = ""
    reminders_sent: int = 0  # how many of its reminders went out (the store counts them, so each goes once)
    # the domain's Kerberos objects when it was requested (bot.domain.model.world_of), signed: the change runs
    # only on that world ("" in records written before it was kept)
    world: str = ""
    after: str = ""  # the world a successful change left (a rotation's: what its second rotation must find)
    after_mac: str = ""
    # every transition, signed (bot.domain.history); the record's state must be the one it leads to
    history: tuple[HistoryEntry, ...] = ()

    @property
    def time_to_live(self) -> timedelta:
        return self.expires_at - self.created_at

    def approvable_at(self, at: datetime) -> bool:
        """``at`` is within the request's life, as an approval is dated: by the clock of the replica that took the
        click, which may read Redis's a little behind the replica that filed the request."""
        return self.created_at - REPLICA_CLOCK_SKEW <= at < self.expires_at

    def waited_too_long(self, at: datetime) -> bool:
        """Approved, and still waiting for a worker longer than its own time to live since it was approved, or
        since the change window it waited for opened: it must expire, not run (the store's claim script
        applies the same rule)."""
        if self.approved_at is None:
            return False
        since = max(self.approved_at, self.waits_until or self.approved_at)
        return at - since > self.time_to_live


class RequestChangeKind(enum.Enum):
    """What happened to a request, as its requester hears it."""

    POSTED = "posted"  # its card is up, waiting for approvers
    APPROVAL = "approval"  # one more approval, more needed
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"  # withdrawn by someone other than the requester
    EXPIRED = "expired"
    WAITING = "waiting"  # approved outside its change window: runs at its opening
    HANDED_OVER = "handed_over"  # approved, and handed to an operator to run (actor: the operator)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ATTENTION = "attention"


@dataclass(frozen=True)
class RequestChange:
    kind: RequestChangeKind
    actor: str | None = None  # who approved, denied or withdrew it
    detail: str = ""  # a denial's reason (a person's words), an outcome, when a waiting change runs
    count: int = 0  # approvals so far


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
    WRONG_ORIGIN = "wrong_origin"  # the click came from another workspace, app or channel than the request
    SAME_PERSON = "same_person"  # this Entra user already approved (from another Slack account)


@dataclass(frozen=True)
class DecisionResult:
    verdict: Verdict
    request: ChangeRequest | None
    approvals: int = 0
    # the decision is on the replicas it must be on before anyone is told (None: no replica is asked; False:
    # none confirmed in time, so a failover now could lose it)
    kept: bool | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: str
    request_id: str
    event: str  # requested, approved, denied, expired, cancelled, refused, claimed, succeeded, failed
    actor: str | None
    at: datetime
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """The entry as it leaves the bot (an export, a SIEM): times in UTC, every field named."""
        return {
            "id": self.id,
            "at": self.at.astimezone(UTC).isoformat(),
            "request": self.request_id,
            "event": self.event,
            "actor": self.actor,
            "detail": self.detail,
            "extra": dict(self.extra),
        }


class GroupDirectory(Protocol):
    """Slack user groups: who may request and who may approve."""

    async def members(self, group_id: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class Claim:
    """An approved request a worker now carries out, and the lease that makes it (and its domain) its own.

    The lease is taken in the same atomic step as the claim; it lapses unless renewed, and a lapsed
    lease is what lets recovery flag the request when its worker died."""

    request: ChangeRequest
    token: str  # names this claim; only its holder renews it or finishes the request
    lease_until: datetime


class FinishResult(enum.Enum):
    FINISHED = "finished"
    LATE = "late"  # the lease had lapsed and recovery flagged the request first: the outcome is kept beside
    NOT_OURS = "not_ours"  # another claim, or no such request: nothing written
