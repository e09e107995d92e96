"""The command worker with in-memory fakes: it answers queued commands, drops stale ones, rides out
a queue that fails, and the acknowledging side falls back to working itself."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from bot.domain.ports import DeferredCommand
from bot.services.container import BotServices
from bot.services.status import StatusService
from bot.workers import commands as command_worker
from bot.workers.commands import CommandWorker
from handlers.responder import ResponseUrlPoster
from handlers.router import KerberosCommand
from tests.support.fakes import NOW, FakeCommandQueue, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state
from tests.support.waiting import until


class RecordingPoster(ResponseUrlPoster):
    def __init__(self) -> None:
        super().__init__()
        self.posted: dict[str, list[dict[str, Any]]] = {}

    async def post(self, response_url: str, body: bytes) -> None:
        self.posted.setdefault(response_url, []).append(json.loads(body))


def listener(poster: ResponseUrlPoster, queue: FakeCommandQueue | None = None) -> KerberosCommand:
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test"))}
    status = StatusService(directories, FakeKerberosModule.in_step(directories), FakeEntra(), clock=lambda: NOW)
    return KerberosCommand(BotServices(status=status), poster, queue=queue)


def deferred(text: str, url: str, age: timedelta = timedelta(0)) -> DeferredCommand:
    return DeferredCommand(text, "U0ALICE", "C0OPS", url, "req-1", datetime.now(UTC) - age)


async def test_queued_commands_are_answered_and_stale_ones_dropped(caplog: pytest.LogCaptureFixture) -> None:
    poster, queue = RecordingPoster(), FakeCommandQueue()
    worker = CommandWorker(partial(listener(poster).work_on, client=None), queue, "w1", block_ms=10)
    queue.queued = [
        deferred("status contoso.test", "https://r/fresh"),
        deferred("status contoso.test", "https://r/stale", age=timedelta(minutes=26)),
        deferred("status nowhere.test", "https://r/unknown"),
    ]
    with caplog.at_level(logging.WARNING):
        worker.start()
        await until(lambda: "https://r/fresh" in poster.posted and "https://r/unknown" in poster.posted)
        await worker.stop()
    assert "Kerberos status: contoso.test" in json.dumps(poster.posted["https://r/fresh"])
    assert "nowhere.test" in json.dumps(poster.posted["https://r/unknown"])  # refused with the valid domains
    assert "https://r/stale" not in poster.posted
    assert any("response URL has expired" in r.getMessage() for r in caplog.records)


async def test_a_failing_queue_is_retried_with_growing_pauses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(command_worker, "RETRY_DELAYS", (0.01, 0.02))
    poster, queue = RecordingPoster(), FakeCommandQueue()
    queue.failures = 3
    queue.queued = [deferred("status", "https://r/after-outage")]
    worker = CommandWorker(partial(listener(poster).work_on, client=None), queue, "w1", block_ms=10)
    with caplog.at_level(logging.WARNING):
        worker.start()
        await until(lambda: "https://r/after-outage" in poster.posted)
        await worker.stop()
    pauses = [r.getMessage() for r in caplog.records if "taking commands from the queue failed" in r.getMessage()]
    assert len(pauses) == 3 and "trying again in 0.02 s" in pauses[-1]


async def test_the_acknowledging_side_queues_instead_of_working() -> None:
    poster, queue = RecordingPoster(), FakeCommandQueue()
    acks: list[dict[str, Any]] = []

    async def ack(**body: Any) -> None:
        acks.append(body)

    command = {
        "text": "status contoso.test",
        "user_id": "U0ALICE",
        "channel_id": "C0OPS",
        "response_url": "https://r/1",
    }
    await listener(poster, queue)(ack, command)
    assert "Checking the Kerberos server" in json.dumps(acks)
    assert [c.text for c in queue.queued] == ["status contoso.test"] and queue.queued[0].reply_to == "https://r/1"
    assert poster.posted == {}  # the worker replies, not this process
