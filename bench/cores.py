"""Cores for a fair comparison on a small machine.

The server under test (``kerberos-bot serve`` or the bare Bolt app, in their turns) gets the last core to
itself; everything else the bench runs (its own process with the Entra and Slack stand-ins, the load
generators, Redis, the Samba DCs, the bot's command worker) shares the others. Without this the
load generator, and in the bot's rounds its worker, Samba and the stand-ins answering the status reads,
take turns on the same two cores as the server they measure, and each round's figure depends on who
the scheduler favoured. With it, both servers meet the same load on the same lone core, and what
differs between them is the work each does per request (printed as CPU time per request).

What stands in for other machines (the Samba DCs, the Entra and Slack stand-ins in the bench's own
process) runs at a lower priority (``STAND_IN_NICE``): only the bot's rounds make them work (its
command worker reads the DCs and posts replies), and at normal priority they would slow the load
generator and Redis in those rounds alone, a cost the bot does not have where those services are remote.
The load generators, Redis and the servers under test run at normal priority.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMBA_PROGRAMS = {"samba", "smbd", "winbindd", "samba-dcerpcd"}
STAND_IN_NICE = 10


@dataclass(frozen=True)
class Cores:
    measured: frozenset[int]  # the server under test's own
    rest: frozenset[int]  # everything else's

    def describe(self) -> str:
        return (
            f"the server under test alone on core {','.join(map(str, sorted(self.measured)))}; the load generators, "
            f"stand-ins, Redis, Samba and the bot's command worker on core(s) {','.join(map(str, sorted(self.rest)))}"
        )


def split() -> Cores | None:
    """The last core for the server under test, the others for the rest; None on a single core."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None
    return Cores(frozenset(available[-1:]), frozenset(available[:-1]))


def threads_of(pid: int) -> list[int]:
    """The thread ids of ``pid`` (Linux keeps affinity and niceness per thread; new threads inherit them)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [pid]


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of ``pid`` onto ``cpus``."""
    for tid in threads_of(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(tid, cpus)


def pinned_at_start(cpus: frozenset[int] | None) -> Callable[[], None]:
    """A ``preexec_fn``: the child is on ``cpus`` (None: where its parent is) and at normal priority before it
    runs a line of its own."""

    def preexec() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        os.setpriority(os.PRIO_PROCESS, 0, 0)

    return preexec


def set_nice(pid: int, niceness: int) -> None:
    """Every thread of ``pid`` at ``niceness``."""
    for tid in threads_of(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, tid, niceness)


def pin_samba(cpus: frozenset[int]) -> int:
    """The sandbox's Samba processes (kept running between runs, so not children of this one) onto ``cpus``,
    at ``STAND_IN_NICE``; returns how many were moved."""
    moved = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = Path(os.readlink(entry / "exe")).name
        except OSError:
            continue
        if program in SAMBA_PROGRAMS:
            pin(int(entry.name), cpus)
            set_nice(int(entry.name), STAND_IN_NICE)
            moved += 1
    return moved


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command's name: state is field 3, so utime (14) and stime (15) are at 11 and 12
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
