"""The shared-state ports but the approval store in this process's memory, with the rules of their Redis
adapters (the contract suites run both): the tests', and ``REDIS_URL=memory://`` (one process; nothing
survives a restart)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.adapters.memory.approvals import MemoryApprovalStore
from bot.domain.approvals import AuditEntry, Freeze
from bot.domain.ports import DeferredCommand


class MemoryNoticePreferences:
    """``NoticePreferences`` in memory."""

    def __init__(self) -> None:
        self.muted_users: set[str] = set()
        self.home: set[str] = set()

    async def remember_home(self, user: str) -> None:
        self.home.add(user)

    async def home_users(self) -> frozenset[str]:
        return frozenset(self.home)

    async def muted(self, user: str) -> bool:
        return user in self.muted_users

    async def set_muted(self, user: str, muted: bool) -> None:
        if muted:
            self.muted_users.add(user)
        else:
            self.muted_users.discard(user)


class MemoryCommandQueue:
    """The command queue in memory (``CommandQueue``): taken by the process that put it."""

    def __init__(self, remember: int = 10_000) -> None:
        self.queued: list[DeferredCommand] = []
        self._taken: OrderedDict[DeferredCommand, None] = OrderedDict()  # the last ``remember`` taken
        self._remember = remember

    async def put(self, command: DeferredCommand) -> None:
        self.queued.append(command)

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        taken, self.queued = self.queued[:count], self.queued[count:]
        if not taken:
            await asyncio.sleep(block_ms / 1000)
        firsts = []
        for command in taken:  # a command put twice is taken once, as in Redis
            if command not in self._taken:
                firsts.append(command)
                self._taken[command] = None
        while len(self._taken) > self._remember:
            self._taken.popitem(last=False)
        return firsts


class MemoryRateLimiter:
    """Token buckets in memory, refilled by the clock it is given (the store's own, as Redis's is for the Redis
    one), not by a caller's."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self.buckets: dict[str, tuple[float, datetime]] = {}

    async def take(self, bucket: str, *, capacity: int, per_second: float) -> float:
        at = self._clock()
        tokens, then = self.buckets.get(bucket, (float(capacity), at))
        tokens = min(float(capacity), tokens + max(0.0, (at - then).total_seconds()) * per_second)
        if tokens >= 1:
            self.buckets[bucket] = (tokens - 1, at)
            return 0.0
        self.buckets[bucket] = (tokens, at)
        return (1 - tokens) / per_second


class MemoryLeadership:
    """The lead in memory (``Leadership``), lapsing by the clock it is given, as the Redis one lapses by Redis's."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.lead: tuple[str, datetime] | None = None  # holder, until

    async def hold(self, holder: str, lease: timedelta) -> bool:
        now = self._clock()
        if self.lead is None or self.lead[0] == holder or self.lead[1] <= now:
            self.lead = (holder, now + lease)
            return True
        return False

    async def release(self, holder: str) -> None:
        if self.lead is not None and self.lead[0] == holder:
            self.lead = None


class MemorySchedulerMemory:
    """``SchedulerMemory`` in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def recall(self, name: str) -> str | None:
        return self.values.get(name)

    async def remember(self, name: str, value: str) -> None:
        self.values[name] = value


class MemoryFreezes:
    """``Freezes`` in a dict; a freeze past its ``until`` is over, as the Redis key's expiry makes it."""

    def __init__(self) -> None:
        self.freezes: dict[str, Freeze] = {}

    async def put(self, freeze: Freeze) -> None:
        self.freezes[freeze.domain] = freeze

    async def get(self, domain: str, at: datetime) -> Freeze | None:
        found = self.freezes.get(domain)
        return found if found is not None and found.until > at else None

    async def remove(self, domain: str) -> bool:
        return self.freezes.pop(domain, None) is not None


class MemoryReplayGuard:
    """``ReplayGuard`` in memory: a Slack request's (timestamp, signature) is remembered for ``remember``."""

    def __init__(self, clock: Callable[[], datetime], remember: timedelta = timedelta(minutes=10)) -> None:
        self._clock = clock
        self._remember = remember
        self._seen: dict[tuple[str, str], datetime] = {}

    async def first_time(self, timestamp: str, signature: str) -> bool:
        now = self._clock()
        self._seen = {pair: until for pair, until in self._seen.items() if until > now}
        if (timestamp, signature) in self._seen:
            return False
        self._seen[(timestamp, signature)] = now + self._remember
        return True


class MemorySignInTickets:
    """``SignInTickets`` in memory; ``clock`` decides when a ticket (or the mark of a used one) lapses."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.tickets: dict[str, tuple[str, datetime]] = {}
        self._used: dict[str, tuple[str, datetime]] = {}

    async def put(self, state: str, ticket: str, ttl: timedelta) -> None:
        if state not in self.tickets:  # as SET NX: a state names one ticket for its life
            self.tickets[state] = (ticket, self._clock() + ttl)

    async def take(self, state: str, remember: timedelta) -> str | None:
        found = self.tickets.pop(state, None)
        if found is None or self._clock() >= found[1]:
            return None
        self._used[state] = (found[0], self._clock() + remember)
        return found[0]

    async def taken(self, state: str) -> str | None:
        found = self._used.get(state)
        return found[0] if found is not None and self._clock() < found[1] else None


class MemoryAuditTrail:
    """``AuditTrail`` over a MemoryApprovalStore's entries (ids count up as the store writes them)."""

    def __init__(self, store: MemoryApprovalStore) -> None:
        self._store = store
        self.cursors: dict[str, str] = {}

    async def after(self, cursor: str | None, count: int) -> list[AuditEntry]:
        start = int(cursor) if cursor else 0
        return [e for e in self._store.entries if int(e.id) > start][:count]

    async def between(self, since: datetime, until: datetime) -> list[AuditEntry]:
        return [e for e in self._store.entries if since <= e.at < until]

    async def cursor(self, reader: str) -> str | None:
        return self.cursors.get(reader)

    async def save_cursor(self, reader: str, cursor: str) -> None:
        self.cursors[reader] = cursor
