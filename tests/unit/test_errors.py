"""Every error the user may see is in the tree drawn in bot/domain/errors.py's docstring."""

from __future__ import annotations

import importlib
import pkgutil
import re

import bot
import bot.domain.errors as errors
import handlers
from bot.domain.errors import KerberosBotError


def _subclasses(root: type) -> set[type]:
    found: set[type] = set()
    subs: list[type] = root.__subclasses__()
    for sub in subs:
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_error_is_in_the_drawn_tree() -> None:
    for package in (bot, handlers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith((".lsa_tdo", ".__main__")):  # lsa_tdo: Debian's Python, python3-samba
                importlib.import_module(info.name)
    drawn = errors.__doc__ or ""
    missing = sorted(e.__name__ for e in _subclasses(KerberosBotError) if not re.search(rf"─ {e.__name__}\b", drawn))
    assert missing == []
