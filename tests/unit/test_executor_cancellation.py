"""A change worker that is stopped while it winds up a change stops: its cancellation is not swallowed where it
waits for its lease's heartbeat to end (it was, and the demo's process then never exited)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.domain.approvals import Claim
from bot.domain.model import KerberosServerReport
from bot.domain.ports import SetServerOptions
from bot.services.changes.limits import ExecutionLimits
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeKerberosModule, on_prem_state


class SlowToRenew(FakeApprovalStore):
    """A lease renewal that takes a while and finishes its round trip before it stops, so a heartbeat cancelled
    in it takes that long to end."""

    async def renew(self, claim: Claim, lease: timedelta, at: datetime) -> Claim | None:
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # the round trip under way ends first, then the cancellation goes on
            raise
        return await super().renew(claim, lease, at)


class SlowModule(FakeKerberosModule):
    """A change that takes longer than a renewal period, so the heartbeat is renewing when it ends."""

    changed: asyncio.Event  # set once the change was made

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        await asyncio.sleep(0.05)
        report = await super().set_server(domain_dns_name, options)
        self.changed.set()
        return report


async def test_a_worker_stopped_while_its_heartbeat_ends_is_stopped() -> None:
    clock = Clock()
    store = SlowToRenew(clock)
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    limits = ExecutionLimits(lease=timedelta(seconds=1), renew_every=timedelta(milliseconds=10))
    module = SlowModule.in_step({"contoso.test": directory})
    assert isinstance(module, SlowModule)
    module.changed = asyncio.Event()
    engine = engine_on_fakes(
        directories={"contoso.test": directory}, store=store, module=module, clock=clock, limits=limits
    )
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.approve(request.id, "U0BOB")

    worker = asyncio.create_task(engine.executor.execute_next("worker"))
    await module.changed.wait()
    # the rest of the change takes a few milliseconds on fakes; then the worker waits for its heartbeat, which
    # is in the middle of a renewal for a few hundred more
    await asyncio.sleep(0.1)
    assert not worker.done()
    worker.cancel()  # the worker is stopped (a shutdown) right then
    await asyncio.wait({worker}, timeout=5)
    assert worker.cancelled(), "the worker's cancellation was swallowed; it went on"
