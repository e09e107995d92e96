"""Two replicas of the bot on a Redis that fails over, and the primary SIGKILLed under load.

On loopback: a primary, a replica (``--lag``: its copy runs that many seconds behind, through a relay) and
three sentinels; two change engines (the bot's replicas) on the sentinel URL, each filing requests,
approving the other's and running approved ones as its change worker. After ``--before`` seconds of load
the primary is killed; the load goes on for ``--after`` seconds. Printed: seconds from the primary's death
to clicks served again, approvals answered (and of those told they were kept, how many the promoted
replica holds), requests run twice (must be 0).

usage: python -m bench.failover [--confirm 1] [--lag 0.0] [--before 3] [--after 12]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from kerberos_sandbox.redis_ha import Sentinels

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import KerberosBotError
from bot.domain.integrity import Signer
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, on_prem_state

DOMAINS = [f"d{i}.test" for i in range(20)]


@dataclass
class Tally:
    answered: list[tuple[str, bool | None, float]] = field(default_factory=list)  # request, kept, when
    refused_while_down: int = 0
    runs: Counter[str] = field(default_factory=Counter)
    killed_at: float | None = None
    served_again_at: float | None = None


DIRECTORIES = {d: FakeDirectory(on_prem_state(d, key_updated_on=NOW - timedelta(days=40))) for d in DOMAINS}
MODULE = FakeKerberosModule.in_step(DIRECTORIES)  # the domains both replicas change
SIGNER = Signer(b"failover-bench-key-".ljust(32, b"k"))  # one key across the replicas, as the configuration gives


def replica(url: str, prefix: str, confirm: int) -> tuple[ChangeEngine, RedisApprovalStore]:
    wait = timedelta(seconds=2)
    store = RedisApprovalStore(connect(url), prefix, confirm_replicas=confirm, confirm_timeout=wait)
    groups = FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0CAROL"})})
    engine = engine_on_fakes(directories=DIRECTORIES, module=MODULE, store=store, groups=groups, signer=SIGNER)
    return engine, store


async def load(name: str, files: ChangeEngine, approves: ChangeEngine, tally: Tally, stop: asyncio.Event) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        try:
            domain = DOMAINS[number % len(DOMAINS)]
            request = await files.intake.request_rotation(domain, requester="U0ALICE", reason=name, force=True)
            result = await approves.decisions.approve(request.id, "U0BOB")
        except KerberosBotError:  # answered: "the approval store is unavailable"
            tally.refused_while_down += 1
            await asyncio.sleep(0.05)
            continue
        if result.verdict == Verdict.APPROVED:
            now = time.monotonic()
            tally.answered.append((request.id, result.kept, now))
            if tally.killed_at is not None and tally.served_again_at is None:
                tally.served_again_at = now


async def work(engine: ChangeEngine, name: str, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            done = await engine.executor.execute_next(name, block_ms=200)
        except KerberosBotError:
            await asyncio.sleep(0.1)
            continue
        if isinstance(done, Execution):
            tally.runs[done.request.id] += 1


async def main(confirm: int, lag: float, before: float, after: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ha = Sentinels(Path(directory), replica_lag=lag)
        await ha.start()
        prefix = f"kbot-failover-{uuid.uuid4().hex[:6]}"
        (one, store_one), (two, store_two) = replica(ha.url, prefix, confirm), replica(ha.url, prefix, confirm)
        tally, stop = Tally(), asyncio.Event()
        tasks = [
            asyncio.create_task(load("a", one, two, tally, stop)),
            asyncio.create_task(load("b", two, one, tally, stop)),
            asyncio.create_task(work(one, "worker-a", tally, stop)),
            asyncio.create_task(work(two, "worker-b", tally, stop)),
        ]
        try:
            await asyncio.sleep(before)
            await ha.primary.kill()
            tally.killed_at = time.monotonic()
            await asyncio.sleep(after)
            stop.set()
            await asyncio.gather(*tasks)
            for _ in range(50):  # what is left approved runs before the count
                if not await work_left(store_one):
                    break
                soon = _stopped_soon()
                await asyncio.gather(work(one, "worker-a", tally, soon), work(two, "worker-b", tally, soon))
            kept = lost = told_safe_and_lost = 0
            for request_id, told_kept, _at in tally.answered:
                stored = await store_one.get(request_id)
                if stored is not None and stored.approvals:
                    kept += 1
                else:
                    lost += 1
                    told_safe_and_lost += told_kept is True
            twice = sum(1 for runs in tally.runs.values() if runs > 1)
            back = (
                f"{tally.served_again_at - tally.killed_at:.1f} s"
                if tally.served_again_at is not None and tally.killed_at is not None
                else "never"
            )
            print(f"failover: confirm_replicas={confirm}, replica lag {lag:g} s, primary SIGKILLed after {before:g} s")
            print(f"  clicks served again after the primary's death: {back}")
            print(f"  answered while Redis had no primary (store unavailable): {tally.refused_while_down}")
            print(f"  approvals answered: {len(tally.answered)}; on the promoted replica: {kept}; lost: {lost}")
            print(f"  of those lost, answered as confirmed by a replica: {told_safe_and_lost} (must be 0)")
            print(f"  requests run: {len(tally.runs)}; run twice: {twice}")
        finally:
            await store_one.close()
            await store_two.close()
            await ha.stop()


async def work_left(store: RedisApprovalStore) -> bool:
    approved = [r for r in await store.recent(400) if r.state == RequestState.APPROVED]
    return bool(await store.executing()) or bool(approved)


def _stopped_soon() -> asyncio.Event:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, event.set)
    return event


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--confirm", type=int, default=1, help="[changes] confirm_replicas (0 or 1)")
    parser.add_argument("--lag", type=float, default=0.0, help="seconds the replica's copy runs behind")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the primary dies")
    parser.add_argument("--after", type=float, default=12.0, help="seconds of load after it")
    options = parser.parse_args()
    asyncio.run(main(options.confirm, options.lag, options.before, options.after))
