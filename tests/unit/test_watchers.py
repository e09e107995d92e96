"""The change service's watchers (the requesters' direct messages, the home pages): each hears every
change of state; one that fails changes nothing about the request; the bot waits for those in flight
before it closes its connections."""

from __future__ import annotations

import asyncio

from bot.domain.approvals import RequestChange, RequestChangeKind, RequestState, Verdict
from bot.domain.card import RequestCard
from tests.support.fakes import on_prem_state
from tests.support.worlds import one_domain


class Recorder:
    def __init__(self) -> None:
        self.heard: list[RequestChangeKind] = []
        self.gate: asyncio.Event | None = None

    async def request_changed(self, card: RequestCard, change: RequestChange) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.heard.append(change.kind)


class Broken:
    async def request_changed(self, card: RequestCard, change: RequestChange) -> None:
        raise RuntimeError("Slack is down")


async def test_every_change_is_heard_and_a_failing_watcher_changes_nothing() -> None:
    world = one_domain(on_prem_state("contoso.test"))
    recorder = Recorder()
    world.changes.watchers.add(Broken())
    world.changes.watchers.add(recorder)
    request = await world.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=True)
    await world.changes.decisions.card_posted(request.id, "C0PLATFORM", "1.1")
    assert (await world.changes.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
    await world.changes.executor.execute_next("worker")
    assert recorder.heard == [RequestChangeKind.POSTED, RequestChangeKind.APPROVED, RequestChangeKind.SUCCEEDED]
    done = await world.changes.queries.get(request.id)
    assert done is not None and done.state == RequestState.SUCCEEDED


async def test_drain_waits_for_what_is_being_told() -> None:
    world = one_domain(on_prem_state("contoso.test"))
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    world.changes.watchers.add(recorder)
    request = await world.changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=True)
    telling = asyncio.create_task(world.changes.decisions.card_posted(request.id, "C0PLATFORM", "1.1"))
    await asyncio.sleep(0)
    assert not await world.changes.watchers.drain(timeout=0.1)  # a direct message is still on its way
    recorder.gate.set()
    assert await world.changes.watchers.drain(timeout=1.0)
    await telling
    assert recorder.heard == [RequestChangeKind.POSTED]
