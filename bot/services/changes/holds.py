"""What holds a change back: a freeze of its domain (until a time, by an approver), and its domain's change
windows (an approved change outside them waits for the next opening, or is refused, per policy).
Break-glass, and its review, are held by neither."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actions.base import ActionContext
from bot.domain.approvals import ACTION_KINDS, KEY_ROTATIONS, Action, ChangeRequest, Freeze, RequestState
from bot.domain.errors import KerberosBotError, UsageError
from bot.domain.hints import hint
from bot.domain.model import dns_name
from bot.domain.ports import ApprovalStore, Freezes
from bot.domain.user_text import checked_text
from bot.domain.verification import VerifiedIdentity
from bot.domain.windows import ALWAYS_OPEN, ChangeWindows, OutsideWindow
from bot.services.changes.authority import Authority
from bot.services.changes.errors import NotAllowed, RefusedAtExecution


@dataclass(frozen=True)
class FreezeRules:
    """Who may freeze a domain (and end its freeze) and for how long."""

    groups: frozenset[str] = frozenset()  # empty: every approver group
    longest: timedelta = timedelta(days=14)
    verified: bool = False  # a freeze and a thaw need a fresh Entra sign-in, confirmed on the bot's page


WHO_FREEZES = "[changes] freeze_groups; by default every approver group"


def freeze_record(domain: str) -> str:
    """The audit trail's name for a domain's freezes (they are not requests)."""
    return f"freeze-{domain}"


class Holds:
    def __init__(
        self,
        *,
        context: ActionContext,
        authority: Authority,
        clock: Callable[[], datetime],
        store: ApprovalStore,
        freezes: Freezes | None = None,
        windows: Mapping[str, ChangeWindows] | None = None,
        freeze_rules: FreezeRules | None = None,
    ) -> None:
        self._context = context  # the configured domains
        self._store = store  # freezes and thaws go into the audit trail
        self._rules = freeze_rules or FreezeRules()
        self._authority = authority
        self._clock = clock
        self._freezes = freezes  # None: freezes are off (no shared store to keep them in)
        self._windows = {dns_name(d): w for d, w in (windows or {}).items()}  # absent: always open

    # -- freezes ----------------------------------------------------------------------------------
    async def not_frozen(self, domain: str, action: Action, *, refused: type[KerberosBotError] = UsageError) -> None:
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

    @property
    def _freeze_groups(self) -> frozenset[str]:
        return self._rules.groups or self._authority.every_approver_group

    @property
    def needs_sign_in(self) -> bool:
        """A freeze and its early end wait for a verified sign-in ([changes] freeze_verified)."""
        return self._rules.verified

    async def may_freeze(self, domain: str, *, by: str, until: datetime, reason: str) -> str:
        """Everything a freeze checks but the sign-in, before one is asked for; returns the domain's name."""
        name = self._context.directory(domain).domain_dns_name
        if self._freezes is None:
            raise KerberosBotError("Freezes need the approval store (REDIS_URL).")
        if not reason.strip():
            raise UsageError(f"Say why, after `--`: {hint(f'freeze {name} <until> -- <reason>')}.")
        checked_text(reason, "reason")
        if not await self._authority.is_member(by, self._freeze_groups):
            raise NotAllowed(f"Only members of the freeze groups ({WHO_FREEZES}) may freeze a domain.")
        now = self._clock()
        if until <= now:
            raise UsageError("Give a time in the future for the freeze to end.")
        if until - now > self._rules.longest:
            days = self._rules.longest.total_seconds() / 86400
            raise UsageError(f"A freeze lasts at most {days:g} days ([changes] max_freeze_days); give an earlier end.")
        return name

    async def may_thaw(self, domain: str, *, by: str) -> str:
        name = self._context.directory(domain).domain_dns_name
        if not await self._authority.is_member(by, self._freeze_groups):
            raise NotAllowed(f"Only members of the freeze groups ({WHO_FREEZES}) may end a freeze.")
        return name

    def _signed_in(self, identity: VerifiedIdentity | None, what: str) -> str:
        """The audit's word on who signed in; refused when the policy asks a sign-in and none was made."""
        if identity is None:
            if self._rules.verified:
                raise NotAllowed(f"{what} needs a verified Entra sign-in ([changes] freeze_verified): nothing changed.")
            return ""
        return f" (signed in as {identity.describe()})"

    async def freeze(
        self, domain: str, *, by: str, until: datetime, reason: str, identity: VerifiedIdentity | None = None
    ) -> Freeze:
        """Freeze a domain, for at most the configured length: the freeze groups' members may (by default,
        whoever may approve a change), after a verified sign-in where the policy asks. Audited."""
        name = await self.may_freeze(domain, by=by, until=until, reason=reason)
        signed_in = self._signed_in(identity, f"Freezing {name}")
        assert self._freezes is not None  # may_freeze refuses without them
        now = self._clock()
        freeze = Freeze(name, until, by, reason.strip(), now)
        await self._freezes.put(freeze)
        detail = f"until {until.isoformat()}: {freeze.reason}{signed_in}"
        await self._store.note(freeze_record(name), "frozen", by, detail, now)
        return freeze

    async def thaw(self, domain: str, *, by: str, identity: VerifiedIdentity | None = None) -> bool:
        """End a freeze before its time: only the freeze groups' members may, as only they may freeze, after a
        verified sign-in where the policy asks. Audited."""
        name = await self.may_thaw(domain, by=by)
        if self._freezes is None:
            return False
        signed_in = self._signed_in(identity, f"Ending the freeze of {name}")
        ended = await self._freezes.remove(name)
        if ended:
            detail = f"the freeze was ended before its time{signed_in}"
            await self._store.note(freeze_record(name), "thawed", by, detail, self._clock())
        return ended

    async def freeze_of(self, domain: str) -> Freeze | None:
        if self._freezes is None:
            return None
        return await self._freezes.get(self._context.directory(domain).domain_dns_name, self._clock())

    # -- change windows ---------------------------------------------------------------------------
    def windows_of(self, domain: str) -> ChangeWindows:
        """The domain's change windows (always open, when the configuration gives none)."""
        return self._windows.get(dns_name(domain), ALWAYS_OPEN)

    def opening_to_wait_for(self, request: ChangeRequest, now: datetime) -> datetime | None:
        """Outside the domain's change window: the opening to wait for (policy ``wait``); refused (raises)
        under ``refuse``; None: it runs now (inside a window, or break-glass)."""
        windows = self.windows_of(request.domain)
        if ACTION_KINDS[request.action].overrides_holds or windows.open_at(now):
            return None
        opening = windows.next_opening(now)
        if windows.outside is OutsideWindow.REFUSE or opening is None:
            raise RefusedAtExecution(
                f"it was approved outside the change window of {request.domain} ({windows.describe()}), and the "
                "domain's policy refuses such changes. Request it again so that it is approved within a window"
            )
        return opening

    def overridden(self, request: ChangeRequest, at: datetime) -> str:
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
