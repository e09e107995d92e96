"""What a person's text may hold before the bot keeps it: no control characters (but line breaks and
tabs), which could otherwise hide text from a reader or be taken for structure by whatever reads the
record later."""

from __future__ import annotations

import unicodedata

from bot.domain.errors import UsageError

_ALLOWED = {"\n", "\t"}


def checked_text(text: str, what: str) -> str:
    """``text`` when it holds no control character; a clear refusal naming ``what`` otherwise."""
    found = sorted({c for c in text if unicodedata.category(c) == "Cc" and c not in _ALLOWED})
    if found:
        codes = ", ".join(f"U+{ord(c):04X}" for c in found)
        raise UsageError(f"The {what} holds control characters ({codes}); type it again without them.")
    return text
