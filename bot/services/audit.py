"""The audit trail out of Redis: an export for a time range (JSON lines or CSV), and a forwarder that
sends every entry to each configured SIEM sink at least once, resuming from a cursor kept in Redis.

The forwarder runs in the change workers, on the one that holds its lead (like the scheduler): a sink
gets the entries in order; the cursor moves only after the sink took them, so a crash or a refusal
sends them again (at least once, never lost).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.domain.approvals import AuditEntry
from bot.domain.errors import KerberosBotError, UsageError
from bot.domain.ports import AuditSink, AuditTrail, Leadership

log = logging.getLogger(__name__)

Format = Literal["jsonl", "csv"]
CSV_COLUMNS = ("id", "at", "request", "event", "actor", "detail", "extra")
BATCH = 200


def _csv_safe(value: str) -> str:
    # a cell a spreadsheet would run as a formula (=, +, -, @) is quoted as text: the detail is people's words
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_lines(entries: Sequence[AuditEntry], fmt: Format) -> Iterator[str]:
    """The entries as lines of ``fmt`` (each line ends with a newline)."""
    if fmt == "jsonl":
        for entry in entries:
            yield json.dumps(entry.as_record(), ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        record = entry.as_record()
        record["extra"] = json.dumps(record["extra"], sort_keys=True) if record["extra"] else ""
        writer.writerow([_csv_safe(str(record[c] or "")) for c in CSV_COLUMNS])
    yield from buffer.getvalue().splitlines(keepends=True)


async def export(trail: AuditTrail, since: datetime, until: datetime, fmt: Format) -> Iterator[str]:
    if until <= since:
        raise UsageError("--until must be after --since.")
    return export_lines(await trail.between(since, until), fmt)


@dataclass(frozen=True)
class Forwarded:
    sink: str
    sent: int
    problem: str | None = None  # the sink refused or could not be reached: tried again next time


class AuditForwarder:
    """Sends the audit trail to every sink, at least once, from each sink's cursor."""

    def __init__(
        self,
        trail: AuditTrail,
        sinks: Sequence[AuditSink],
        leadership: Leadership,
        name: str,
        *,
        lease: timedelta = timedelta(seconds=15),
    ) -> None:
        self._trail = trail
        self._sinks = list(sinks)
        self._leadership = leadership
        self._name = name
        self._lease = lease

    async def run_once(self) -> list[Forwarded]:
        """One round, if this worker leads: every sink gets what it has not yet, in batches."""
        if not self._sinks or not await self._leadership.hold(self._name, self._lease):
            return []
        return [await self._forward(sink) for sink in self._sinks]

    async def _forward(self, sink: AuditSink) -> Forwarded:
        sent = 0
        try:
            cursor = await self._trail.cursor(sink.name)
            while True:
                entries = await self._trail.after(cursor, BATCH)
                if not entries:
                    return Forwarded(sink.name, sent)
                await sink.send(entries)
                cursor = entries[-1].id
                await self._trail.save_cursor(sink.name, cursor)  # only once the sink has them
                sent += len(entries)
                if len(entries) < BATCH:
                    return Forwarded(sink.name, sent)
        except KerberosBotError as exc:
            log.warning("audit forwarding to %s stopped after %d entries: %s", sink.name, sent, exc.user_message)
            return Forwarded(sink.name, sent, exc.user_message)

    async def close(self) -> None:
        await self._leadership.release(self._name)
        for sink in self._sinks:
            await sink.close()
