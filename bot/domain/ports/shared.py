"""What every replica shares (kept in Redis): the command queue, the replay guard, the lead, freezes,
chat origins, the scheduler's memory, rate limits and notice preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.domain.approvals import (
    Freeze,
)

if TYPE_CHECKING:  # the card model names the handover, whose effect names SetServerOptions below
    pass


@dataclass(frozen=True)
class DeferredCommand:
    """A command already acknowledged whose follow-up work (reads, rendering, the reply) a worker does."""

    text: str
    user_id: str
    channel_id: str
    reply_to: str  # where the replies go (Slack: the response URL)
    request_id: str  # the log correlation id of the acknowledging process
    queued_at: datetime
    team_id: str = ""
    app_id: str = ""
    mac: str = ""  # bot.domain.integrity: the bot queued it (a queue entry is run as its user)


class CommandQueue(Protocol):
    """Hands acknowledged commands from the process that acknowledges to the processes that work."""

    async def put(self, command: DeferredCommand) -> None: ...

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        """Up to ``count`` commands, each given to one consumer only (at most once: a command a
        crashed worker took is not redone, as a crashed in-process reply was never redone)."""
        ...


class ReplayGuard(Protocol):
    """Remembers every Slack request's (timestamp, signature) for longer than Slack's 5-minute window."""

    async def first_time(self, timestamp: str, signature: str) -> bool:
        """True the first time this pair is seen; False for a replay."""
        ...


class Leadership(Protocol):
    """One holder at a time across every replica (the scheduler runs where this says so); the lead
    lapses when its holder stops renewing it."""

    async def hold(self, holder: str, lease: timedelta) -> bool:
        """Take the lead if nobody holds it, or keep it for ``lease`` more if ``holder`` does; else False."""
        ...

    async def release(self, holder: str) -> None:
        """Give the lead up now (only if ``holder`` has it), so that another takes over at once."""
        ...


class Freezes(Protocol):
    """The freezes of the domains, shared by every replica; a freeze ends by itself at its ``until``."""

    async def put(self, freeze: Freeze) -> None: ...

    async def get(self, domain: str, at: datetime) -> Freeze | None:
        """The domain's freeze still in force at ``at``, if any."""
        ...

    async def remove(self, domain: str) -> bool: ...


class ChatOrigins(Protocol):
    """Where a request the bot files itself comes from (``"<team>/<app>/<channel>"``): clicks on its card
    count only from there, as for a request typed in that channel."""

    async def origin_of(self, channel: str) -> str: ...


class SchedulerMemory(Protocol):
    """What the scheduler must not forget when the lead moves or the bot restarts: what it filed and reported."""

    async def recall(self, name: str) -> str | None: ...

    async def remember(self, name: str, value: str) -> None: ...


class RateLimiter(Protocol):
    """Token buckets per key (a user's new requests, a user's clicks), shared by every replica and refilled by
    the store's own clock: no caller's clock has a say (replicas' clocks drift apart)."""

    async def take(self, bucket: str, *, capacity: int, per_second: float) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there is (nothing taken)."""
        ...


class NoticePreferences(Protocol):
    """What each person wants to hear directly from the bot (their direct messages about their requests)."""

    async def muted(self, user: str) -> bool:
        """The user turned the direct messages about their requests off."""
        ...

    async def set_muted(self, user: str, muted: bool) -> None: ...

    async def remember_home(self, user: str) -> None:
        """The user opened the bot's home page: it is redrawn for them when something changes."""
        ...

    async def home_users(self) -> frozenset[str]: ...
