"""A forced rotation through the approval flow on the real parts: Redis, the Samba DC, the stand-in."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from kerberos_sandbox.sandbox import Sandbox

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from tests.support.engine import engine_on_fakes
from tests.support.fakes import FakeGroups

pytestmark = pytest.mark.samba
REDIS_URL = "redis://127.0.0.1:6379/0"
APPROVERS = frozenset(f"U0APPROVER{i}" for i in range(20))


@pytest.fixture
async def service(box: Sandbox) -> AsyncIterator[tuple[ChangeEngine, RedisApprovalStore]]:
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"
    client = connect(REDIS_URL)
    store = RedisApprovalStore(client, prefix)
    policies = {
        Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"})),
        Action.ROTATE_FORCE: ActionPolicy(2, timedelta(hours=1), frozenset(), frozenset({"S0ADMINS"})),
    }
    svc = engine_on_fakes(
        store=store,
        module=box.components.module,
        directories=box.components.directories,
        groups=FakeGroups({"S0ADMINS": APPROVERS}),
        policies=policies,
        clock=lambda: datetime.now(UTC),
    )
    yield svc, store
    async for key in client.scan_iter(match=f"{prefix}:*", count=500):
        await client.delete(key)
    await client.aclose()


async def test_forced_rotation_executes_once_and_both_sides_agree(
    box: Sandbox, service: tuple[ChangeEngine, RedisApprovalStore]
) -> None:
    svc, store = service
    directory = box.components.directories["contoso.test"]
    before = (await directory.read_kerberos_objects()).server
    assert before is not None and before.key is not None
    request = await svc.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="right after setup", force=True
    )
    assert request.approvals_required == 2

    results = await asyncio.gather(*(svc.decisions.approve(request.id, a) for a in sorted(APPROVERS)))
    assert Counter(r.verdict for r in results)[Verdict.APPROVED] == 1

    executions = await asyncio.gather(*(svc.executor.execute_next(f"worker-{i}") for i in range(3)))
    done = [e for e in executions if isinstance(e, Execution)]
    assert len(done) == 1 and done[0].succeeded, done[0].outcome if done else None
    assert done[0].request.state == RequestState.SUCCEEDED

    after = (await directory.read_kerberos_objects()).server
    assert after is not None and after.key is not None and after.key.version > before.key.version
    report = await box.components.module.get_server("contoso.test")
    assert report.key_version == report.cloud_key_version == after.key.version
    events = await box.components.entra.kerberos_domain_events("contoso.test")
    assert events[0].activity == "Update kerberos domain"
    trail = [e.event for e in await store.audit(request.id)]
    assert trail[0] == "requested" and trail.count("approved") == 2 and trail[-2:] == ["claimed", "succeeded"]


async def test_unforced_rotation_of_a_fresh_key_is_refused_before_approval(
    service: tuple[ChangeEngine, RedisApprovalStore],
) -> None:
    svc, store = service
    with pytest.raises(Exception, match="needs `--force`"):
        await svc.intake.request_rotation("contoso.test", requester="U0ALICE", reason="routine", force=False)
    assert await store.recent() == []
