"""The processes a process started, read from /proc (serve's command workers, a Samba DC's children)."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    """The live processes ``pid`` started (zombies, already gone but for their exit status, left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    """Its children, their children, and so on."""
    return [found for child in children(pid) for found in (child, *descendants(child))]
