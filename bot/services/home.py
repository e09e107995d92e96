"""What a person's home page in the chat shows: each domain's key age and health, the requests waiting
for their approval, their own requests, and when each domain's next rotation is due. Read cheaply (one
LDAP read per domain, what the watch last saw), since it is drawn whenever someone opens it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.card import RequestCard
from bot.domain.errors import KerberosBotError
from bot.domain.findings import Finding
from bot.domain.ports import NoticePreferences
from bot.services.changes.engine import ChangeEngine
from bot.services.lifecycle import LifecycleService
from bot.services.readers import Readers

LINES_FRESH_FOR = 30.0  # seconds: a burst of redraws (a request's every step, for every viewer) reads AD once
READ_TIMEOUT = timedelta(seconds=4)  # per domain: a DC that does not answer shows as such, the page still comes
READS_AT_ONCE = 10  # a page of a hundred domains reads them ten at a time, not a hundred connections at once
MAX_LISTED = 10


@dataclass(frozen=True)
class DomainLine:
    domain: str
    key_version: int | None
    key_age: timedelta | None
    next_due: datetime | None  # when the key reaches its cadence (or the policy's maximum age)
    findings: tuple[Finding, ...] | None  # what the watch last saw; None: not watched
    problem: str | None = None  # the key could not be read


@dataclass(frozen=True)
class HomePage:
    user: str
    domains: tuple[DomainLine, ...]
    to_approve: tuple[RequestCard, ...]
    mine: tuple[RequestCard, ...]
    muted: bool
    reads_domains: bool = True  # False: not a reader ([policy] reader_groups): the domains are not shown
    to_run: tuple[RequestCard, ...] = ()  # operator-executes mode: changes handed to them to run


async def _nothing() -> tuple[DomainLine, ...]:
    return ()


class HomeService:
    def __init__(
        self,
        changes: ChangeEngine,
        *,
        lifecycle: LifecycleService | None = None,
        preferences: NoticePreferences | None = None,
        key_max_age: timedelta = timedelta(days=180),
        readers: Readers | None = None,
    ) -> None:
        self._changes = changes
        self._readers = readers or Readers()
        self._lifecycle = lifecycle
        self._preferences = preferences
        self._max_age = key_max_age
        self._lines: tuple[float, tuple[DomainLine, ...]] | None = None  # (when read, monotonic), the lines

    async def _line(self, domain: str) -> DomainLine:
        findings = await self._lifecycle.last_findings(domain) if self._lifecycle else None
        try:
            async with asyncio.timeout(READ_TIMEOUT.total_seconds()):
                version, window = await self._changes.queries.key_window(domain)
        except (KerberosBotError, TimeoutError) as exc:
            why = exc.user_message if isinstance(exc, KerberosBotError) else "no DC answered in time"
            return DomainLine(domain, None, None, None, findings, why)
        cadence = (self._lifecycle.cadence_of(domain) if self._lifecycle else None) or self._max_age
        age = window.key_age
        due = self._changes.queries.now() - age + cadence if age is not None else None
        return DomainLine(domain, version, age, due, findings)

    async def _domain_lines(self) -> tuple[DomainLine, ...]:
        if self._lines is not None and time.monotonic() - self._lines[0] < LINES_FRESH_FOR:
            return self._lines[1]
        gate = asyncio.Semaphore(READS_AT_ONCE)

        async def read(domain: str) -> DomainLine:
            async with gate:
                return await self._line(domain)

        lines = tuple(await asyncio.gather(*(read(d) for d in self._changes.queries.domains)))
        self._lines = (time.monotonic(), lines)
        return lines

    async def page(self, user: str) -> HomePage:
        reads = await self._readers.may_read(user)
        lines, to_approve, mine, to_run = await asyncio.gather(
            self._domain_lines() if reads else _nothing(),
            self._changes.queries.awaiting(user),
            self._changes.queries.requested_by(user),
            self._changes.queries.handed_to(user),
        )
        muted = await self._preferences.muted(user) if self._preferences else False
        card = self._changes.queries.card
        listed = tuple(card(r) for r in to_approve[:MAX_LISTED]), tuple(card(r) for r in mine[:MAX_LISTED])
        running = tuple(card(r) for r in to_run[:MAX_LISTED])
        return HomePage(user, tuple(lines), *listed, muted, reads_domains=reads, to_run=running)

    async def viewers(self) -> frozenset[str]:
        """Who opened their home page (so it is redrawn for them when something changes)."""
        return await self._preferences.home_users() if self._preferences else frozenset()

    async def opened(self, user: str) -> None:
        if self._preferences is not None:
            await self._preferences.remember_home(user)

    async def set_direct_messages(self, user: str, *, on: bool) -> None:
        if self._preferences is None:
            raise KerberosBotError(
                "Direct messages cannot be turned off here: the bot has no store (REDIS_URL) for it."
            )
        await self._preferences.set_muted(user, not on)
