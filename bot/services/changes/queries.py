"""What the engine can tell without changing anything: a request, a domain's history (the bot's requests
and Entra's audit events), the key's window and where it has replicated, who waits for whom."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actions.base import ActionContext
from bot.domain.approvals import AuditEntry, ChangeRequest
from bot.domain.card import ApprovalTerms, RequestCard, title_of
from bot.domain.errors import KerberosBotError
from bot.domain.findings import RotationWindow, rotation_window
from bot.domain.history import Event
from bot.domain.model import AuditEvent, dns_name
from bot.domain.operators import handover_of
from bot.domain.ports import ApprovalStore, EntraDirectory
from bot.services.changes.authority import Authority
from bot.services.changes.holds import Holds


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


class Queries:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        context: ActionContext,
        authority: Authority,
        clock: Callable[[], datetime],
        entra: EntraDirectory | None = None,
        approval_channels: Mapping[str, str] | None = None,
        holds: Holds | None = None,
    ) -> None:
        self._store = store
        self._holds = holds  # the change windows: when an undecided request would run
        self._context = context
        self._authority = authority
        self._clock = clock
        self._entra = entra  # Entra's KerberosDomain audit events, for a domain's history
        # domain -> the channel its cards go to and its approvals come from (absent: where it is asked)
        self._approval_channels = {dns_name(d): c for d, c in (approval_channels or {}).items()}

    def card(self, request: ChangeRequest, now: datetime | None = None) -> RequestCard:
        """The request as every surface shows it (``now``: the moment it describes; the clock's by default)."""
        policy = self._authority.policy_of(request)
        # a request may need more than its policy (a setup that takes over another tenant's server)
        required = max(policy.approvals_required, request.approvals_required)
        terms = ApprovalTerms(required, policy.verified_approval, tuple(sorted(policy.approver_groups)))
        timing = self._holds.timing_of(request) if self._holds is not None else None
        handover = handover_of(request) if any(e.event == Event.HANDED_OVER for e in request.history) else None
        return RequestCard(request, title_of(request), terms, now or self._clock(), timing, handover)

    @property
    def domains(self) -> list[str]:
        return list(self._context.directories)

    def now(self) -> datetime:
        """The engine's clock (the one its rules read)."""
        return self._clock()

    def approvals_channel_of(self, domain: str) -> str | None:
        """The channel the domain's requests are approved in, when its configuration names one."""
        return self._approval_channels.get(dns_name(domain))

    async def get(self, request_id: str) -> ChangeRequest | None:
        return await self._store.get(request_id)

    async def pending_or_recent(self, count: int = 20) -> list[ChangeRequest]:
        return list(await self._store.recent(count))

    async def recent_for(self, domain: str, count: int = 20) -> Sequence[ChangeRequest]:
        """The domain's newest requests, newest first."""
        return await self._store.for_domain(dns_name(domain), count)

    async def requested_by(self, user: str, count: int = 100) -> list[ChangeRequest]:
        """The user's own requests among the newest ``count``, newest first."""
        return [r for r in await self._store.recent(count) if r.requester == user]

    async def handed_to(self, user: str) -> list[ChangeRequest]:
        """Changes with their operator that ``user`` is named to run (as its last handover says; whether the record
        is the bot's is the look's to judge, which concludes a forged one)."""
        return [r for r in await self._store.with_operator() if (h := handover_of(r)) and h.operator == user]

    async def awaiting(self, user: str) -> list[ChangeRequest]:
        """Pending requests ``user`` may approve and has not: in an approver group of the action (or the
        fallback group, once it escalated), never their own."""
        now, approvable = self._clock(), await self._authority.approvable(user)
        pending = await self._store.pending()
        return [r for r in pending if await self._authority.may_approve(user, r, now, approvable)]

    async def history(self, domain: str, *, count: int = 10, lookback: timedelta = timedelta(days=90)) -> DomainHistory:
        """The domain's last ``count`` requests with their audit, and Entra's audit events of ``lookback``."""
        name = self._context.directory(domain).domain_dns_name
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

    async def key_window(self, domain: str) -> tuple[int | None, RotationWindow]:
        """The key's version and its rotation window, from AD as the rotation's pre-flight reads them (one
        LDAP read: no module call, so the scheduler may ask every tick)."""
        server = (await self._context.directory(domain).read_kerberos_objects()).server
        key = server.key if server else None
        window = rotation_window(key.updated_on if key else None, self._clock(), self._context.rotation)
        return (key.version if key else None), window

    async def key_everywhere(self, domain: str) -> bool:
        """Every configured DC of ``domain`` holds the key AD shows now (replication done)."""
        state = await self._context.directory(domain).read_kerberos_objects()
        if state.server is None or state.server.key is None:
            return False
        held = await self.follow_key(
            domain, state.server.key.version, interval=timedelta(0), give_up_after=timedelta(0)
        )
        return not held.lagging

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
        directory = self._context.directory(domain)
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
