"""How long a change may hold its lease and run, how long records are kept, and how fast people may go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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


@dataclass(frozen=True)
class RateLimits:
    requests_per_hour: int = 20  # new change requests per requester
    clicks_per_minute: int = 30  # Approve/Deny clicks per user
