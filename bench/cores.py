"""Cores for a fair comparison on a small machine.

The server under test (``kerberos-bot serve`` or the bare Bolt app, in their turns) gets the last core to
itself; everything else the bench runs (its own process with the Entra and Slack stand-ins, the load
generators, Redis, the Samba DCs, the bot's command worker) shares the others. Without this the
load generator, and in the bot's rounds its worker, Samba and the stand-ins answering the status reads,
take turns on the same two cores as the server they measure, and each round's figure depends on who
the scheduler favoured. With it, both servers meet the same load on the same lone core, and what
differs between them is the work each does per request (printed as CPU time per request).

What stands in for other machines (the Samba DCs, the Entra and Slack stand-ins in the bench's own
process) and the bot's command worker are kept off the load generator's and Redis's way while the
acknowledgements are timed (``while_timing``): in Linux's idle class, they run only when nothing else on
the core wants to. Only the bot's rounds make them work (its worker takes each queued command, reads the
DCs and posts the reply), and at a mere lower priority (nice 10, the worker at 19) a task woken by a reply
still takes the core from the load generator and Redis for a while, in those rounds alone: a cost the bot
does not have where Slack, Redis and the DCs are other machines. The replies are timed in rounds of their
own, with the worker and the stand-ins at that lower priority (``STAND_IN_NICE``). And in each of the bot's
timed rounds its command worker is stopped until the round's acknowledgements are all in (``hold``): even in
the idle class, its work on the other core (and the DCs' and stand-ins' it sets off) raised the acknowledging
process's own CPU per request by a tenth to a third on this machine, through what the cores share; the queue
holds the round's commands, and the worker answers them all before the next round. The load generators,
Redis and the servers under test always run at normal priority. What the bench cannot hold off is the rest
of the machine (its other services are not pinned): docs/benchmarks.md says how much that moves.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Iterator
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


def each_thread(pid: int, change: Callable[[int], object]) -> None:
    """``change`` applied to every thread of ``pid`` (a thread that ended meanwhile is skipped)."""
    for tid in threads_of(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            change(tid)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of ``pid`` onto ``cpus``."""
    each_thread(pid, lambda tid: os.sched_setaffinity(tid, cpus))


def pinned_at_start(cpus: frozenset[int] | None) -> Callable[[], None]:
    """A ``preexec_fn``: the child is on ``cpus`` (None: where its parent is) and at normal priority, in the
    normal class, before it runs a line of its own."""

    def preexec() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, 0, 0)

    return preexec


def set_nice(pid: int, niceness: int) -> None:
    """Every thread of ``pid`` at ``niceness``."""
    each_thread(pid, lambda tid: os.setpriority(os.PRIO_PROCESS, tid, niceness))


def set_idle_class(pid: int, idle: bool) -> None:
    """Every thread of ``pid`` into Linux's idle class (it runs only when no other task wants the core), or
    back into the normal class at the niceness it had."""
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    each_thread(pid, lambda tid: os.sched_setscheduler(tid, policy, os.sched_param(0)))


def samba_processes() -> list[int]:
    """The sandbox's Samba processes (kept running between runs, so not children of this one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = Path(os.readlink(entry / "exe")).name
        except OSError:
            continue
        if program in SAMBA_PROGRAMS:
            found.append(int(entry.name))
    return found


def pin_samba(cpus: frozenset[int]) -> int:
    """The sandbox's Samba processes onto ``cpus``, at ``STAND_IN_NICE``; returns how many were moved."""
    moved = samba_processes()
    for pid in moved:
        pin(pid, cpus)
        set_nice(pid, STAND_IN_NICE)
    return len(moved)


@contextlib.contextmanager
def while_timing(pids: Iterable[int]) -> Iterator[None]:
    """``pids`` (and the Samba processes, which fork as they go) in the idle class for the ``with`` block."""
    held = [*pids, *samba_processes()]
    for pid in held:
        set_idle_class(pid, idle=True)
    try:
        yield
    finally:
        for pid in [*held, *samba_processes()]:
            set_idle_class(pid, idle=False)


def hold(pids: Iterable[int]) -> Callable[[], None]:
    """Stop ``pids`` now (SIGSTOP); the function returned lets them go on (SIGCONT)."""
    held = list(pids)
    for pid in held:
        os.kill(pid, signal.SIGSTOP)

    def release() -> None:
        for pid in held:
            os.kill(pid, signal.SIGCONT)

    return release


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command's name: state is field 3, so utime (14) and stime (15) are at 11 and 12
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
