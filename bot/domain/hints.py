"""A command a message of the core points its reader to, named apart from any chat.

``hint("status contoso.test")`` puts ⟦status contoso.test⟧ in the text; each surface writes it as its
people type it (Slack: `/kerberos status contoso.test`, ``handlers/replies.py``; the console the same
without the code marks). Outcomes are stored with their hints so, whichever surface shows them later.
"""

from __future__ import annotations

import re
from collections.abc import Callable

HINT = re.compile(r"⟦([^⟦⟧\n]{1,200})⟧")


def hint(command: str) -> str:
    """``command``: what follows the bot's own command (``status contoso.test``, ``requests``)."""
    return f"⟦{command}⟧"


def spelled(text: str, as_typed: Callable[[str], str]) -> str:
    """``text`` with each hint written by ``as_typed``."""
    return HINT.sub(lambda m: as_typed(m.group(1)), text)
