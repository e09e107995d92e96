"""Parsing of the text after ``/kerberos``."""

from __future__ import annotations

import re
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
    options: dict[str, str] = field(default_factory=dict)  # --name value, --name=value


VALUE_OPTIONS = frozenset({"top-level-names"})
SHELL_QUOTING = re.compile(r"[\"'\\]")  # what makes shlex do more than split on its whitespace
SHELL_WHITESPACE = re.compile(r"[ \t\r\n]+")  # shlex's whitespace (not str.split's, which is all of Unicode's)


def split_words(text: str) -> list[str]:
    """The words of a command, quoted as in a shell; without quotes or backslashes (nearly every command)
    the same split as shlex's, without its character-by-character reader."""
    if not SHELL_QUOTING.search(text):
        return [word for word in SHELL_WHITESPACE.split(text) if word]
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"Could not read that command ({exc}); check the quotes.") from exc


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
    tokens = split_words(text)
    if not tokens:
        return ParsedCommand("help", reason=reason)
    name, rest = tokens[0].lower(), tokens[1:]
    args: list[str] = []
    flags: set[str] = set()
    options: dict[str, str] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--") and len(token) > 2:
            key, eq, value = token[2:].partition("=")
            key = key.lower()
            if key in VALUE_OPTIONS:
                if not eq:
                    if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                        raise UsageError(f"`--{key}` needs a value, e.g. `--{key} usgovcloudapi.net,windows.net`.")
                    i += 1
                    value = rest[i]
                options[key] = value
            else:
                flags.add(key)
        else:
            args.append(token)
        i += 1
    return ParsedCommand(name, tuple(args), frozenset(flags), reason, options)
