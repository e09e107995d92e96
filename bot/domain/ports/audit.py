"""The append-only audit trail and the sinks (a SIEM) it is forwarded to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.domain.approvals import (
    AuditEntry,
)

if TYPE_CHECKING:  # the card model names the handover, whose effect names SetServerOptions below
    pass


class AuditTrail(Protocol):
    """The append-only audit trail, read in order, and where each reader (a SIEM sink) got to."""

    async def after(self, cursor: str | None, count: int) -> list[AuditEntry]:
        """Up to ``count`` entries after ``cursor`` (an entry's id; None: from the start), oldest first."""
        ...

    async def between(self, since: datetime, until: datetime) -> list[AuditEntry]:
        """The entries whose time is in [since, until), oldest first."""
        ...

    async def cursor(self, reader: str) -> str | None: ...

    async def save_cursor(self, reader: str, cursor: str) -> None: ...


class AuditSink(Protocol):
    """Somewhere the audit trail is forwarded to (a SIEM); ``send`` returns only once the sink has it."""

    @property
    def name(self) -> str: ...

    async def send(self, entries: Sequence[AuditEntry]) -> None:
        """Deliver ``entries`` in order; raises ``KerberosBotError`` when the sink did not take them all."""
        ...

    async def close(self) -> None: ...
