"""The part of OData's ``$filter`` that the bot sends to directoryAudits: eq, and, lambda any() on
targetResources, and ge/le on activityDateTime; anything else is refused as Graph does."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from kerberos_sandbox.entra.base import (
    Predicate,
)


def field_equals(name: str, value: str) -> Predicate:
    return lambda event: event.get(name) == value


def target_named(name: str) -> Predicate:
    return lambda event: any((t.get("displayName") or "").lower() == name for t in event["targetResources"])


def time_compare(op: str, bound: datetime) -> Predicate:
    def compare(event: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(str(event["activityDateTime"]).replace("Z", "+00:00"))
        return {"ge": at >= bound, "le": at <= bound, "gt": at > bound, "lt": at < bound}[op]

    return compare


def parse_filter(text: str) -> list[Predicate]:
    """The subset of OData $filter the bot uses: eq on category, activityDisplayName,
    loggedByService, result; ge/le/gt/lt on activityDateTime; and
    ``targetResources/any(t: t/displayName eq '...')``; joined by ``and``."""
    predicates: list[Predicate] = []
    if not text.strip():
        return predicates
    for raw in re.split(r"\s+and\s+", text.strip()):
        clause = raw.strip()
        m = re.fullmatch(r"targetResources/any\((\w+):\s*\1/displayName eq '((?:[^']|'')*)'\)", clause)
        if m:
            predicates.append(target_named(m.group(2).replace("''", "'").lower()))
            continue
        m = re.fullmatch(r"(category|activityDisplayName|loggedByService|result) eq '((?:[^']|'')*)'", clause)
        if m:
            predicates.append(field_equals(m.group(1), m.group(2).replace("''", "'")))
            continue
        m = re.fullmatch(r"activityDateTime (ge|le|gt|lt) (\S+)", clause)
        if m:
            bound = datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))
            if bound.tzinfo is None:
                raise ValueError(f"{clause} (the time needs a zone, e.g. Z)")
            predicates.append(time_compare(m.group(1), bound))
            continue
        raise ValueError(clause)
    return predicates
