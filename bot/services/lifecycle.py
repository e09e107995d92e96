"""The key's lifecycle on a schedule: rotations filed when a key reaches its domain's cadence, the
second rotation of a double rotation filed once the 24-hour window has passed, and a watch that
reports each new finding (and its resolution) once.

Nothing here carries anything out: every rotation it files is a request like any other, with the
policy's approvals, and the change worker runs it only once approved. The scheduler that calls it
runs on one replica at a time (``bot.workers.scheduler``); what it must not forget when the lead
moves (what it filed, what it reported) is kept in ``SchedulerMemory``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.approvals import KEY_ROTATIONS, Action, ChangeRequest, RequestState
from bot.domain.errors import KerberosBotError
from bot.domain.findings import Finding, Severity
from bot.domain.operators import handover_of
from bot.domain.ports import SchedulerMemory
from bot.services.changes.engine import ChangeEngine
from bot.services.status import StatusService

log = logging.getLogger(__name__)

# a scheduled rotation that was denied or expired is filed again after this long, not at every tick
REFILE_AFTER = timedelta(days=1)
# how long after its time limit an operator's change is named beside what the watch sees
OPERATOR_LOOKBACK = timedelta(days=1)


async def _no_origin(channel: str) -> str:
    return ""


@dataclass(frozen=True)
class DomainSchedule:
    """A domain's lifecycle settings (``[[domains]]``: channel, rotate_every_days, rotate_twice)."""

    domain: str
    channel: str | None = None  # where scheduled requests and the watch's reports go; None: neither
    rotate_every: timedelta | None = None  # None: no scheduled rotation
    rotate_twice: bool = False  # scheduled rotations are double rotations
    approvals_channel: str | None = None  # where its scheduled requests are carded instead, when set


@dataclass(frozen=True)
class WatchReport:
    """A finding the watch saw appear (``resolved`` False) or go away (True) in a domain."""

    domain: str
    channel: str
    finding: Finding
    resolved: bool
    # a change of the domain in an operator's hands (or concluded from one lately): what the finding may be
    operator_request: str | None = None


@dataclass(frozen=True)
class DomainDigest:
    """One domain's lines in a digest."""

    domain: str
    key_age: timedelta | None
    rotate_every: timedelta | None  # the cadence; None: the policy's maximum age applies
    max_age: timedelta
    rotations: int  # succeeded in the period
    refused: int  # denied or failed in the period
    expired: int
    drift: tuple[str, ...]  # the findings the watch reported new in the period (their summaries)


@dataclass(frozen=True)
class Digest:
    channel: str
    since: datetime
    until: datetime
    domains: tuple[DomainDigest, ...]


class LifecycleService:
    def __init__(
        self,
        *,
        changes: ChangeEngine,
        status: StatusService,
        memory: SchedulerMemory,
        schedules: Sequence[DomainSchedule],
        clock: Callable[[], datetime],
        origin_of: Callable[[str], Awaitable[str]] | None = None,
        key_max_age_days: int = 180,
    ) -> None:
        self._max_age_days = key_max_age_days  # the policy's, for a domain without a cadence
        self._changes = changes
        self._status = status
        self._memory = memory
        self._schedules: Mapping[str, DomainSchedule] = {s.domain: s for s in schedules}
        self._clock = clock
        # "<team>/<app>/<channel>" of a channel: the only place a scheduled request's clicks count from
        self._origin_of = origin_of or _no_origin

    async def _open_rotation(self, domain: str) -> ChangeRequest | None:
        for request in await self._changes.queries.recent_for(domain, 20):
            if request.action in KEY_ROTATIONS and not request.state.is_final:
                return request
        return None

    async def file_due_rotations(self) -> list[ChangeRequest]:
        """For each domain whose key has reached its cadence: a rotate request, filed by the bot, once."""
        filed = []
        for schedule in self._schedules.values():
            if schedule.rotate_every is None or schedule.channel is None:
                continue
            try:
                channel = schedule.approvals_channel or schedule.channel
                request = await self._file_if_due(schedule, schedule.rotate_every, channel)
            except KerberosBotError as exc:  # a DC down, a refusal: said in the log, tried again next tick
                log.warning("the scheduled rotation of %s was not filed: %s", schedule.domain, exc.user_message)
                continue
            if request is not None:
                filed.append(request)
        return filed

    async def _file_if_due(self, schedule: DomainSchedule, every: timedelta, channel: str) -> ChangeRequest | None:
        version, window = await self._changes.queries.key_window(schedule.domain)
        age = window.key_age
        if age is None or age < every or not window.allowed_now:
            return None
        if await self._open_rotation(schedule.domain) is not None:
            return None
        if await self._changes.holds.freeze_of(schedule.domain) is not None:
            return None  # filed once the freeze is over; not refused (and logged) at every tick meanwhile
        marker = f"cadence:{schedule.domain}"
        remembered = json.loads(await self._memory.recall(marker) or "{}")
        now = self._clock()
        if remembered.get("key_version") == version and now - datetime.fromisoformat(remembered["at"]) < REFILE_AFTER:
            return None
        days = every.days
        reason = (
            f"Scheduled rotation: the key is {age.days} days old and this domain's policy rotates every {days} days"
            + (
                " (a double rotation: the second follows once the 24-hour window has passed)"
                if schedule.rotate_twice
                else ""
            )
            + "."
        )
        request = await self._changes.intake.request_on_schedule(
            schedule.domain,
            reason=reason,
            channel=channel,
            origin=await self._origin_of(channel),
            twice=schedule.rotate_twice,
        )
        await self._memory.remember(
            marker, json.dumps({"key_version": version, "at": now.isoformat(), "id": request.id})
        )
        log.info("filed the scheduled rotation %s of %s", request.id, schedule.domain)
        return request

    async def file_second_rotations(self) -> list[ChangeRequest]:
        """The second half of each double rotation whose first succeeded: its own request (same requester,
        so they still cannot approve it), linked to the first; after a plain rotation once the 24-hour
        window has passed (no -Force), after an emergency rotation once the new key is on every DC
        (forced). After an emergency's second rotation: the review two people must acknowledge."""
        filed = []
        for domain in self._changes.queries.domains:
            recent = await self._changes.queries.recent_for(domain, 20)
            # what already follows a request, from the requests themselves (the memory below is a second guard)
            followed = {(r.follows, r.action == Action.EMERGENCY_REVIEW) for r in recent if r.follows}
            for done in recent:
                if done.state != RequestState.SUCCEEDED:
                    continue
                if done.twice and done.follows is None and (done.id, False) in followed:
                    continue  # its second rotation is filed
                if done.follows is not None and (done.follows, True) in followed:
                    continue  # the emergency's review is filed
                try:
                    if done.twice and done.follows is None:
                        request = await self._second_rotation(domain, done)
                    elif done.action == Action.EMERGENCY_ROTATE and done.follows is not None:
                        request = await self._review(done)
                    else:
                        continue
                except KerberosBotError as exc:
                    log.warning("what follows %s was not filed: %s", done.id, exc.user_message)
                    continue
                if request is not None:
                    filed.append(request)
        return filed

    async def _second_rotation(self, domain: str, first: ChangeRequest) -> ChangeRequest | None:
        marker = f"second:{first.id}"
        if await self._memory.recall(marker) is not None:
            return None
        if first.action == Action.EMERGENCY_ROTATE:
            ready = await self._changes.queries.key_everywhere(domain)  # the new key replicated: retire the old one now
        else:
            _, window = await self._changes.queries.key_window(domain)
            ready = window.allowed_now  # within 24 hours -Force would be needed: not wanted
        if not ready:
            return None
        second = await self._changes.intake.request_second_rotation(first)
        await self._memory.remember(marker, second.id)
        return second

    async def _review(self, second: ChangeRequest) -> ChangeRequest | None:
        marker = f"review:{second.follows}"
        if await self._memory.recall(marker) is not None:
            return None
        review = await self._changes.intake.request_review(second)
        await self._memory.remember(marker, review.id)
        return review

    async def watch(self) -> list[WatchReport]:
        """Each domain's findings that need someone (warning or worse) against the last look: the new
        ones and the resolved ones, each reported once across replicas and restarts."""
        reports = []
        for schedule in self._schedules.values():
            if schedule.channel is None:
                continue
            try:
                [status] = await self._status.status(schedule.domain)
            except KerberosBotError as exc:
                log.warning("the watch could not read %s: %s", schedule.domain, exc.user_message)
                continue
            current = {f.code: f for f in status.diagnosis.findings if f.severity >= Severity.WARNING}
            before = await self._seen(schedule.domain)
            new = [f for code, f in current.items() if code not in before]
            operator_request = await self._operator_request(schedule.domain) if new else None
            for finding in new:
                reports.append(WatchReport(schedule.domain, schedule.channel, finding, False, operator_request))
            if new:  # what the next digest says was seen
                drift = json.loads(await self._memory.recall(f"drift:{schedule.domain}") or "[]")
                drift += [{"at": self._clock().isoformat(), "code": f.code, "summary": f.summary} for f in new]
                await self._memory.remember(f"drift:{schedule.domain}", json.dumps(drift[-200:]))
            for code, gone in before.items():
                if code not in current:
                    reports.append(WatchReport(schedule.domain, schedule.channel, gone, resolved=True))
            kept = {c: {"severity": str(int(f.severity)), "summary": f.summary} for c, f in current.items()}
            await self._memory.remember(f"watch:{schedule.domain}", json.dumps(kept, sort_keys=True))
        return reports

    async def _operator_request(self, domain: str) -> str | None:
        """The domain's change handed to an operator that is still with them or was concluded in the last day:
        a change the watch sees outside the bot may be theirs (or what went wrong with it)."""
        for request in await self._changes.queries.recent_for(domain, 20):
            handover = handover_of(request)
            if handover is not None and (
                request.state == RequestState.WITH_OPERATOR or self._clock() - handover.until < OPERATOR_LOOKBACK
            ):
                return request.id
        return None

    async def _seen(self, domain: str) -> dict[str, Finding]:
        """The findings the watch saw at its last look at ``domain`` (what it remembered), by code."""
        seen: dict[str, dict[str, str]] = json.loads(await self._memory.recall(f"watch:{domain}") or "{}")
        return {code: Finding(code, Severity(int(f["severity"])), f["summary"]) for code, f in seen.items()}

    def cadence_of(self, domain: str) -> timedelta | None:
        """The domain's rotation cadence (``rotate_every_days``), if it has one."""
        schedule = self._schedules.get(domain)
        return schedule.rotate_every if schedule else None

    async def last_findings(self, domain: str) -> tuple[Finding, ...] | None:
        """What the watch saw in the domain at its last look (warnings and worse); None: it does not watch it."""
        schedule = self._schedules.get(domain)
        if schedule is None or schedule.channel is None:
            return None
        return tuple(finding for _code, finding in sorted((await self._seen(domain)).items()))

    async def digests(self, every: timedelta) -> list[Digest]:
        """Per channel, once every ``every``: key ages against the policy, the rotations done, the
        requests refused or expired, and the drift the watch saw, since the last digest."""
        now = self._clock()
        by_channel: dict[str, list[DomainSchedule]] = {}
        for schedule in self._schedules.values():
            if schedule.channel is not None:
                by_channel.setdefault(schedule.channel, []).append(schedule)
        digests = []
        for channel, schedules in by_channel.items():
            marker = f"digest:{channel}"
            last = await self._memory.recall(marker)
            if last is None:  # the first look starts the period: the first digest comes one period later
                await self._memory.remember(marker, now.isoformat())
                continue
            since = datetime.fromisoformat(last)
            if now - since < every:
                continue
            lines = [await self._domain_digest(s, since, now) for s in schedules]
            await self._memory.remember(marker, now.isoformat())
            digests.append(Digest(channel, since, now, tuple(lines)))
        return digests

    async def _domain_digest(self, schedule: DomainSchedule, since: datetime, until: datetime) -> DomainDigest:
        key_age = None
        try:
            [status] = await self._status.status(schedule.domain)
            key_age = status.diagnosis.rotation.key_age
        except KerberosBotError as exc:
            log.warning("the digest could not read %s: %s", schedule.domain, exc.user_message)
        recent = [
            r for r in await self._changes.queries.recent_for(schedule.domain, 100) if since <= r.created_at < until
        ]
        drift_log = json.loads(await self._memory.recall(f"drift:{schedule.domain}") or "[]")
        drift = tuple(entry["summary"] for entry in drift_log if since.isoformat() <= entry["at"] < until.isoformat())
        return DomainDigest(
            domain=schedule.domain,
            key_age=key_age,
            rotate_every=schedule.rotate_every,
            max_age=timedelta(days=self._max_age_days),
            rotations=sum(r.action in KEY_ROTATIONS and r.state == RequestState.SUCCEEDED for r in recent),
            refused=sum(r.state in (RequestState.DENIED, RequestState.FAILED) for r in recent),
            expired=sum(r.state == RequestState.EXPIRED for r in recent),
            drift=drift,
        )
