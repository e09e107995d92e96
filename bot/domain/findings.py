"""What a diagnosis speaks in: findings with their severity, the health they add up to, the rotation
window, and what the adapters observed (the input of ``bot.domain.checks``)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.model import AuditEvent, KerberosServerReport, OnPremState


class Severity(enum.IntEnum):
    OK = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3


class Health(enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # works, but something needs attention
    BROKEN = "broken"  # Kerberos for cloud users fails
    ABSENT = "absent"  # no Entra Kerberos server in this domain
    UNKNOWN = "unknown"  # a source could not be read


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    summary: str
    advice: str | None = None


@dataclass(frozen=True)
class RotationPolicy:
    key_max_age_days: int = 180
    rotation_min_interval: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class RotationWindow:
    allowed_now: bool
    allowed_from: datetime | None  # when a rotation without --force becomes allowed
    key_age: timedelta | None


@dataclass(frozen=True)
class Diagnosis:
    health: Health
    findings: tuple[Finding, ...]
    rotation: RotationWindow

    @property
    def headline(self) -> str:
        return {
            Health.HEALTHY: "Healthy",
            Health.DEGRADED: "Needs attention",
            Health.BROKEN: "Broken",
            Health.ABSENT: "Not set up",
            Health.UNKNOWN: "Could not be fully checked",
        }[self.health]


@dataclass(frozen=True)
class SourceFailure:
    """A source that could not be read, with the user-safe reason."""

    source: str  # "Active Directory", "Kerberos module", "Entra ID"
    message: str


@dataclass(frozen=True)
class Observations:
    domain: str
    report: KerberosServerReport | None
    on_prem: OnPremState | None
    audit_events: Sequence[AuditEvent] | None
    failures: Sequence[SourceFailure] = field(default_factory=tuple)
    audit_since: datetime | None = None  # start of the audit look-back period


def rotation_window(key_updated_on: datetime | None, now: datetime, policy: RotationPolicy) -> RotationWindow:
    if key_updated_on is None:
        return RotationWindow(allowed_now=True, allowed_from=None, key_age=None)
    age = now - key_updated_on
    allowed_from = key_updated_on + policy.rotation_min_interval
    return RotationWindow(allowed_now=now >= allowed_from, allowed_from=allowed_from, key_age=age)
