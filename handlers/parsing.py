"""Parsing of the text after ``/kerberos``."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from bot.domain.errors import UsageError

MAX_COMMAND_LENGTH = 2000


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    args: tuple[str, ...] = ()
    flags: frozenset[str] = field(default_factory=frozenset)
    reason: str | None = None  # text after a lone "--"


def parse_command(text: str) -> ParsedCommand:
    """Split ``status contoso.com --force -- why`` into its parts; empty text means ``help``."""
    text = (text or "").strip()
    if len(text) > MAX_COMMAND_LENGTH:
        raise UsageError(f"That command is {len(text)} characters long; the limit is {MAX_COMMAND_LENGTH}.")
    reason: str | None = None
    head, sep, tail = text.partition(" -- ")
    if sep:
        text, reason = head, tail.strip() or None
    elif text.endswith(" --"):
        text = text[:-3]
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"Could not read that command ({exc}); check the quotes.") from exc
    if not tokens:
        return ParsedCommand("help", reason=reason)
    name, rest = tokens[0].lower(), tokens[1:]
    args = tuple(t for t in rest if not t.startswith("--"))
    flags = frozenset(t[2:].lower() for t in rest if t.startswith("--") and len(t) > 2)
    return ParsedCommand(name, args, flags, reason)
