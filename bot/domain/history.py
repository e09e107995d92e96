"""A request's history: one entry per transition, each signed by the bot (``bot.domain.integrity``) over a
canonical encoding, appended by the same atomic step that makes the transition. The state a record shows
must be the state its history leads to (``bot.domain.replay``): a writer of the store who sets a denied
request back to pending, or a failed one back to approved, leaves a record its history contradicts."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime


class Event(enum.Enum):
    FILED = "filed"  # detail: "" or "approved with <first id>" (a second rotation filed approved)
    APPROVED = "approved"  # one approval; actor: the approver; detail: the Entra object id where verified
    DENIED = "denied"  # detail: the reason
    CANCELLED = "cancelled"  # by the requester while pending, or withdrawn while it waited for its window
    STEP = "step"  # a step of the execution (the first one: claimed); detail: the step
    WAITS = "waits"  # put back to wait for its change window; detail: when it opens (ISO)
    # handed to an operator (operator-executes mode); actor: the operator; detail: bot.domain.operators.Handover
    HANDED_OVER = "handed_over"
    SUCCEEDED = "succeeded"  # detail: the outcome
    FAILED = "failed"
    ATTENTION = "attention"


@dataclass(frozen=True)
class HistoryEntry:
    event: Event
    actor: str  # a Slack user id, a worker's name, or "" for the bot itself
    at: datetime
    detail: str = ""
    mac: str = ""

    def encoded(self) -> str:
        """The entry as the store keeps it (one string, appended whole)."""
        return json.dumps(
            {
                "event": self.event.value,
                "actor": self.actor,
                "at": self.at.astimezone(UTC).isoformat(),
                "detail": self.detail,
                "mac": self.mac,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def decoded(cls, text: str) -> HistoryEntry | None:
        """The entry ``text`` encodes, or None for anything else (never an exception: it is store content)."""
        try:
            data = json.loads(text)
            return cls(
                Event(data["event"]),
                str(data["actor"]),
                datetime.fromisoformat(str(data["at"])),
                str(data["detail"]),
                str(data["mac"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
