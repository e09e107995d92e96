"""The adapter's Lua scripts, kept as .lua files in ``lua/`` (package data) and read once.

A script may start with preludes (``once``, ``audit``, ``decision_checks``): shared local functions and checks
that several scripts run first; they are concatenated in the order given (``audit`` stands on ``once``).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def lua_script(name: str, *preludes: str) -> str:
    folder = files("bot.adapters.redis") / "lua"
    return "".join((folder / f"{part}.lua").read_text(encoding="utf-8") for part in (*preludes, name))
