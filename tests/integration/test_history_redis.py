"""The signed history on the real Redis: the scripts append each transition's signed entry in the step that
makes it, and a writer of Redis who sets a request's state back (a denial undone, a failed removal made
approved again and re-queued) is refused at execution, nothing run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import KerberosModuleError
from bot.domain.integrity import Signer
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeKerberosModule, on_prem_state

REDIS_URL = "redis://127.0.0.1:6379/0"
SIGNER = Signer(b"r" * 32)


@dataclass
class World:
    engine: ChangeEngine
    store: RedisApprovalStore
    module: FakeKerberosModule
    directory: FakeDirectory
    redis: Any
    prefix: str


@pytest.fixture
async def world() -> AsyncIterator[World]:
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"
    client = connect(REDIS_URL)
    store = RedisApprovalStore(client, prefix, reclaim_after=timedelta(0))
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    # the clock stands at NOW, as the fake directory's times do; Redis decides the leases by its own
    engine = engine_on_fakes(directories={"contoso.test": directory}, store=store, module=module, signer=SIGNER)
    yield World(engine, store, module, directory, client, prefix)
    async for key in client.scan_iter(match=f"{prefix}:*", count=500):
        await client.delete(key)
    await client.aclose()


async def test_a_change_leaves_a_history_the_bot_signed_entry_by_entry(world: World) -> None:
    request = await world.engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await world.engine.decisions.approve(request.id, "U0BOB")
    done = await world.engine.executor.execute_next("w")
    assert isinstance(done, Execution) and done.succeeded
    stored = await world.store.get(request.id)
    assert stored is not None and SIGNER.problems(stored) == []
    kept = await world.redis.lrange(f"{world.prefix}:req:{request.id}:history", 0, -1)
    assert len(kept) == len(stored.history) and '"event":"filed"' in kept[0] and '"event":"succeeded"' in kept[-1]


async def test_a_denial_undone_in_redis_is_refused_at_execution(world: World) -> None:
    request = await world.engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await world.engine.decisions.deny(request.id, "U0BOB", "not now")
    key = f"{world.prefix}:req:{request.id}"
    await world.redis.hset(key, mapping={"state": "pending", "decided_by": ""})
    await world.redis.zadd(f"{world.prefix}:pending", {request.id: 10**13})
    assert (await world.engine.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
    execution = await world.engine.executor.execute_next("w")
    assert isinstance(execution, Execution) and not execution.succeeded and world.module.set_calls == 0
    assert execution.request.state == RequestState.ATTENTION and "approved while denied" in execution.outcome


async def test_a_failed_removal_made_approved_and_requeued_in_redis_never_runs_again(world: World) -> None:
    request = await world.engine.intake.request_remove_tdo("contoso.test", requester="U0ALICE", reason="q")
    await world.engine.decisions.approve(request.id, "U0BOB")
    world.module.error = KerberosModuleError("Access denied")
    failed = await world.engine.executor.execute_next("w")
    assert isinstance(failed, Execution) and not failed.succeeded
    world.module.error = None
    key = f"{world.prefix}:req:{request.id}"
    await world.redis.hset(key, mapping={"state": "approved", "outcome": ""})
    await world.redis.xadd(f"{world.prefix}:work", {"request": request.id})
    again = await world.engine.executor.execute_next("w")
    assert isinstance(again, Execution) and not again.succeeded and "while failed" in again.outcome
    assert world.directory.state.trusted_domain is not None  # removed neither once nor twice
