"""How a change request and its approvals are written in Redis hashes, and read back."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.approvals import (
    Action,
    Approval,
    AuditEntry,
    ChangeRequest,
    RequestState,
)
from bot.domain.history import Event, HistoryEntry
from bot.domain.verification import VerifiedIdentity


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def time_of(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def allowed_list(actions: frozenset[Action] | None) -> str:
    return "*" if actions is None else "\n".join(sorted(a.value for a in actions)) or "-"


def pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def approval_value(at: datetime, identity: VerifiedIdentity | None, mac: str = "") -> str:
    value: dict[str, Any] = {"at": iso(at), "mac": mac}
    if identity is not None:
        value.update(
            oid=identity.object_id, upn=identity.upn, signed_in_at=iso(identity.signed_in_at), mfa=identity.mfa
        )
    return json.dumps(value)


def identity_from(data: dict[str, Any]) -> VerifiedIdentity:
    return VerifiedIdentity(
        object_id=str(data["oid"]),
        upn=str(data["upn"]),
        signed_in_at=datetime.fromisoformat(str(data["signed_in_at"])),
        mfa=bool(data.get("mfa")),
    )


def approval_from(approver: str, value: str) -> Approval:
    if not value.startswith("{"):
        return Approval(approver, datetime.fromisoformat(value))
    data = json.loads(value)
    identity = identity_from(data) if "oid" in data else None
    return Approval(approver, datetime.fromisoformat(data["at"]), identity, str(data.get("mac", "")))


_AUDIT_FIELDS = frozenset({"request", "event", "actor", "at", "detail"})


def audit_entry(entry_id: str, fields: dict[str, str]) -> AuditEntry:
    """One entry of the audit stream (``P:audit``); fields beyond the five common ones are its extras."""
    return AuditEntry(
        entry_id,
        fields.get("request", ""),
        fields.get("event", ""),
        fields.get("actor") or None,
        datetime.fromisoformat(fields["at"]),
        fields.get("detail", ""),
        {k: v for k, v in fields.items() if k not in _AUDIT_FIELDS},
    )


_UNREADABLE = datetime(1970, 1, 1, tzinfo=UTC)


def with_history(request: ChangeRequest, stored: list[str]) -> ChangeRequest:
    """``request`` with its history (an entry that cannot be read stays, unsigned, so it never verifies) and
    its journal, the history's steps."""
    history = tuple(
        HistoryEntry.decoded(text) or HistoryEntry(Event.STEP, "", _UNREADABLE, f"unreadable: {text[:80]}")
        for text in stored
    )
    journal = tuple(f"{iso(e.at)} {e.detail}" for e in history if e.event == Event.STEP)
    return replace(request, history=history, journal=journal)


def request_from(fields: dict[str, str], approvals: dict[str, str]) -> ChangeRequest:
    return ChangeRequest(
        id=fields["id"],
        action=Action(fields["action"]),
        domain=fields["domain"],
        requester=fields["requester"],
        reason=fields["reason"],
        plan=tuple(json.loads(fields["plan"])),
        created_at=datetime.fromisoformat(fields["created_at"]),
        expires_at=datetime.fromisoformat(fields["expires_at"]),
        approvals_required=int(fields["approvals_required"]),
        state=RequestState(fields["state"]),
        approvals=tuple(sorted((approval_from(who, value) for who, value in approvals.items()), key=lambda a: a.at)),
        decided_by=fields.get("decided_by") or None,
        decision_reason=fields.get("decision_reason") or None,
        decided_at=time_of(fields.get("decided_at")),
        channel=fields.get("channel") or None,
        card=fields.get("card") or fields.get("message_ts") or None,  # message_ts: records written before
        outcome=fields.get("outcome") or None,
        expected_key_version=int(fields["expected_key_version"]) if fields.get("expected_key_version") else None,
        top_level_names=tuple(n for n in fields.get("top_level_names", "").split(",") if n),
        approved_at=time_of(fields.get("approved_at")),
        claimed_by=fields.get("claimed_by") or None,
        origin=fields.get("origin", ""),
        requester_upn=fields.get("requester_upn") or None,
        requester_oid=fields.get("requester_oid") or None,
        twice=fields.get("twice") == "1",
        follows=fields.get("follows") or None,
        mac=fields.get("mac", ""),
        second_with_first=fields.get("second_with_first") == "1",
        approved_with=fields.get("approved_with") or None,
        world=fields.get("world", ""),
        after=fields.get("after", ""),
        after_mac=fields.get("after_mac", ""),
        waits_until=time_of(fields.get("waits_until")),
        waits_mac=fields.get("waits_mac", ""),
        reminders_sent=int(fields.get("reminders_sent") or 0),
    )
