"""What is wrong with an Entra Kerberos server, in plain words.

``diagnose`` runs ``CHECKS`` (``bot.domain.checks``) over the same facts; the health follows from the
worst finding. No I/O, so every case is unit-testable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain.checks import _WHEN_ABSENT, CHECKS, Check, Facts
from bot.domain.findings import Diagnosis, Finding, Health, Observations, RotationPolicy, RotationWindow, Severity


def _health(findings: Sequence[Finding]) -> Health:
    worst = max((f.severity for f in findings), default=Severity.OK)
    if worst == Severity.CRITICAL:
        return Health.BROKEN
    if any(f.code == "source_unavailable" for f in findings):
        return Health.UNKNOWN
    if worst == Severity.WARNING:
        return Health.DEGRADED
    return Health.HEALTHY


def diagnose(obs: Observations, now: datetime, policy: RotationPolicy, checks: Sequence[Check] = CHECKS) -> Diagnosis:
    """Every check over the same facts; the health follows from the worst finding."""
    facts = Facts.of(obs, now, policy)
    if facts.absent:
        findings = [finding for check in _WHEN_ABSENT for finding in check(facts)]
        return Diagnosis(Health.ABSENT, tuple(findings), RotationWindow(False, None, None))
    findings = [finding for check in checks for finding in check(facts)]
    health = _health(findings)
    if health == Health.HEALTHY:
        findings.insert(
            0,
            Finding(
                "healthy",
                Severity.OK,
                "AD and Entra objects exist and agree: ID, domain name, KeyVersion and KeyUpdatedOn match.",
            ),
        )
    return Diagnosis(health, tuple(findings), facts.window)
