"""Commands whose follow-up work goes through the Redis queue to command workers (as serve runs them)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox

from bot.adapters.redis.client import connect
from bot.adapters.redis.commands import RedisCommandQueue
from bot.domain.ports import DeferredCommand
from bot.observability.logs import JsonFormatter
from bot.services.command_queue import SignedCommandQueue
from tests.integration.test_rotate_slack import cards
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    workdir = Path(tmp_path_factory.mktemp("sandbox"))
    async with sandbox(sandbox_domains(), workdir=workdir, verified_approvals=False, command_workers=2) as running:
        yield running


def signed_queue_of(box: Sandbox) -> SignedCommandQueue:
    signed = box.components.storage.command_queue
    assert isinstance(signed, SignedCommandQueue)  # every entry carries the bot's MAC
    return signed


def queue_of(box: Sandbox) -> RedisCommandQueue:
    inner = signed_queue_of(box).inner
    assert isinstance(inner, RedisCommandQueue)
    return inner


async def queued_so_far(box: Sandbox) -> int:
    client = connect("redis://127.0.0.1:6379/0")
    try:
        # entries ever added: a taken command is deleted from the stream at once
        if not await client.exists(queue_of(box).key):
            return 0
        return int((await client.xinfo_stream(queue_of(box).key))["entries-added"])
    finally:
        await client.aclose()


async def test_status_is_acknowledged_here_and_answered_by_a_worker(box: Sandbox) -> None:
    before = await queued_so_far(box)
    ack, replies = await box.command("status contoso.test")
    assert ack.status == 200 and "Checking the Kerberos server of contoso.test" in ack.body
    acknowledged = json.loads(ack.body)  # the reply's own JSON, serialised once: what Bolt's ack() would send
    assert acknowledged["response_type"] == "ephemeral" and acknowledged["blocks"][0]["type"] == "section"
    assert "Kerberos status: contoso.test" in json.dumps(replies)
    assert await queued_so_far(box) == before + 1  # the work went through Redis
    assert await queue_of(box).backlog() == 0


async def test_a_burst_is_answered_once_per_command(box: Sandbox) -> None:
    # thirty people at once (one person's status reads are rate-limited)
    results = await asyncio.gather(*(box.command("status fabrikam.test", user_id=f"U0BURST{n:02d}") for n in range(30)))
    assert all(ack.status == 200 for ack, _ in results)
    assert all(len(replies) == 1 and "Kerberos status: fabrikam.test" in json.dumps(replies) for _, replies in results)


async def test_a_change_request_is_posted_once(box: Sandbox) -> None:
    cards_before = cards(box)
    ack, replies = await box.command("remove-tdo contoso.test -- queued by a worker", user_id="U0ALICE")
    assert ack.status == 200
    assert "posted for approval" in json.dumps(replies)
    await asyncio.sleep(0.5)  # a second execution would have posted by now
    assert cards(box) == cards_before + 1
    changes = box.components.services.changes
    assert changes is not None
    [request] = [r for r in await changes.queries.pending_or_recent(20) if r.reason == "queued by a worker"]
    await changes.decisions.cancel(request.id, "U0ALICE")


async def test_when_redis_refuses_the_command_the_work_runs_here(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def refuse(_: DeferredCommand) -> None:
        raise ConnectionError("Redis is restarting")

    monkeypatch.setattr(queue_of(box), "put", refuse)
    with caplog.at_level(logging.WARNING):
        ack, replies = await box.command("status contoso.test")
    assert ack.status == 200 and "Kerberos status: contoso.test" in json.dumps(replies)
    assert any("could not queue the command" in r.getMessage() for r in caplog.records)


async def test_a_command_too_old_to_answer_is_dropped(box: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    url = box.slack.new_response_url()
    old = DeferredCommand("status", "U0ALICE", "C0PLATFORM", url, "oldreq", datetime.now(UTC) - timedelta(minutes=26))
    with caplog.at_level(logging.WARNING):
        await signed_queue_of(box).put(old)  # as the acknowledging process puts it
        with pytest.raises(TimeoutError):
            await box.slack.wait_for_responses(url, 1, timeout=2.0)
    assert any("response URL has expired" in r.getMessage() for r in caplog.records)


async def test_a_command_the_configuration_no_longer_allows_gets_a_clear_reply(box: Sandbox) -> None:
    # acknowledged by a process whose configuration still had the domain; the worker's has not
    url = box.slack.new_response_url()
    gone = DeferredCommand("status retired.test", "U0ALICE", "C0PLATFORM", url, "req-gone", datetime.now(UTC))
    await signed_queue_of(box).put(gone)
    [reply] = await box.slack.wait_for_responses(url, 1, timeout=10.0)
    assert "retired.test" in json.dumps(reply) and "contoso.test" in json.dumps(reply)


class _Lines(logging.Handler):
    """The log's lines as the bot writes them (JSON, with the request id and Slack user of each)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of_commands(self) -> list[dict[str, str]]:
        return [line for line in self.lines if line["msg"].startswith("/kerberos ")]


@pytest.fixture
def log_lines() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_queued_command_is_logged_once_by_the_worker_that_does_its_work(
    box: Sandbox, log_lines: _Lines
) -> None:
    # the acknowledging process does only what the acknowledgement and the hand-off need; the line is the work's
    ack, replies = await box.command("status contoso.test", user_id="U0LOGGED")
    assert ack.status == 200 and replies
    [line] = log_lines.of_commands()
    assert line["msg"].startswith("/kerberos status (acknowledged ") and "queued for a worker" in line["msg"]
    assert line["slack_user"] == "U0LOGGED" and line["request_id"] not in ("", "-")


async def test_a_command_answered_at_once_is_logged_once_by_the_acknowledging_process(
    box: Sandbox, log_lines: _Lines
) -> None:
    ack, _ = await box.command("status nowhere.test", user_id="U0LOGGED")  # refused: not a configured domain
    assert ack.status == 200 and "nowhere.test" in ack.body
    assert [line["msg"] for line in log_lines.of_commands()] == ["/kerberos status"]
