"""What Entra's audit log says beside AD's key: the latest cloud change to a domain's Kerberos server, and a key
that changed in AD with no cloud change recorded (reset outside the module)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain.findings import Finding, Severity
from bot.domain.model import AuditEvent

# A cloud change recorded long after (or before) the AD key change hints at a change made outside the module.
_AUDIT_TOLERANCE = timedelta(minutes=15)


def moment_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def audit_findings(
    events: Sequence[AuditEvent], key_updated_on: datetime | None, since: datetime | None
) -> list[Finding]:
    if not events:
        if key_updated_on is not None and since is not None and key_updated_on > since + _AUDIT_TOLERANCE:
            return [
                Finding(
                    "key_changed_outside_module",
                    Severity.WARNING,
                    f"The AD key changed at {moment_text(key_updated_on)}, but Entra's audit log holds no "
                    "KerberosDomain event since: the key may have been reset outside the module.",
                    "Rotate through the module so that Entra gets the new key too.",
                )
            ]
        return [
            Finding(
                "no_audit_events",
                Severity.INFO,
                "Entra's audit log holds no KerberosDomain event for this domain in the look-back period.",
            )
        ]
    latest = max(events, key=lambda e: e.at)
    who = f" by {latest.initiated_by}" if latest.initiated_by else ""
    out = [
        Finding("audit_latest", Severity.OK, f"Last cloud change: {latest.activity} at {moment_text(latest.at)}{who}.")
    ]
    if key_updated_on is not None and key_updated_on - latest.at > _AUDIT_TOLERANCE:
        out.append(
            Finding(
                "key_changed_outside_module",
                Severity.WARNING,
                f"The AD key changed at {moment_text(key_updated_on)}, but Entra recorded no KerberosDomain change "
                "since then: the key may have been reset outside the module.",
                "Rotate through the module so that Entra gets the new key too.",
            )
        )
    return out
