"""A worker killed between the emulator's AD half and its cloud half: flagged with its journal, never
re-run, and status then shows the drift between AD and Entra."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kerberos_sandbox.sandbox import Sandbox

from bot.adapters.kerberos_module.emulator.module import KerberosModuleEmulator
from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ActionPolicy, ChangeRequest, RequestState
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.limits import ExecutionLimits
from tests.support.engine import engine_on_fakes
from tests.support.fakes import FakeGroups

pytestmark = pytest.mark.samba
REDIS_URL = "redis://127.0.0.1:6379/0"


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the worker may catch it, as nothing runs after a SIGKILL."""


async def test_killed_mid_rotation_is_flagged_with_its_journal_and_status_shows_the_drift(box: Sandbox) -> None:
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"
    client = connect(REDIS_URL)
    module = box.components.module
    assert isinstance(module, KerberosModuleEmulator)

    def service() -> ChangeEngine:  # a fresh service per "process", sharing only Redis
        return engine_on_fakes(
            store=RedisApprovalStore(client, prefix),
            module=module,
            directories=box.components.directories,
            groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB"})}),
            policies={Action.ROTATE_FORCE: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({"S0ADMINS"}))},
            clock=lambda: datetime.now(UTC),
            limits=ExecutionLimits(lease=timedelta(seconds=1), renew_every=timedelta(seconds=0.3)),
        )

    try:
        first = service()
        request = await first.intake.request_rotation("contoso.test", requester="U0ALICE", reason="repair", force=True)
        await first.decisions.approve(request.id, "U0BOB")

        async def kill(domain: str) -> None:
            raise WorkerKilled

        module.between_halves = kill
        with pytest.raises(WorkerKilled):
            await first.executor.execute_next("worker-1")
        module.between_halves = None

        second = service()  # the restarted worker
        assert await second.executor.recover() == []  # the lease has not lapsed yet: a live worker may still hold it
        flagged_now: list[ChangeRequest] = []
        async with asyncio.timeout(10):
            while not flagged_now:
                await asyncio.sleep(0.25)  # the sweep's period, shortened
                flagged_now = await second.executor.recover()
        [flagged] = flagged_now
        assert flagged.id == request.id and flagged.state == RequestState.ATTENTION
        steps = [line.split(" ", 1)[1] for line in flagged.journal]
        assert steps == [
            "claimed by worker-1",
            steps[1],
            "re-validated against the stored policy",
            "re-validated: KeyVersion " + str(request.expected_key_version),
            "module call started: Set-AzureADKerberosServer -RotateServerKey",
        ]
        assert steps[1].startswith("claim durable: ")
        assert flagged.outcome and "stopped inside the module call" in flagged.outcome
        assert await second.executor.execute_next("worker-2") is None  # never run again
        assert await second.executor.recover() == []

        _, replies = await box.command("status contoso.test")
        assert "Key versions differ" in str(replies)
    finally:
        module.between_halves = None
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
        await client.aclose()
        # heal the drift for whatever runs next on this directory
        from bot.domain.ports import SetServerOptions

        await module.set_server("contoso.test", SetServerOptions(rotate_server_key=True, force=True))
        await asyncio.sleep(0)
