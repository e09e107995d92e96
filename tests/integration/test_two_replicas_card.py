"""Two replicas of ``kerberos-bot serve`` on one Redis, twenty approvers clicking Approve at once, half on
each: the change runs once and the card Slack shows last tells the truth, in every one of twenty trials
(issue: updates sent by the click handlers with the state of their own click landed after the worker's
"Done", leaving "Waiting for approval" with its buttons, or "Approved; starting", on a finished request).

Real processes on the sandbox's DCs and stand-ins; each replica runs a change worker, so either may carry
the change out. Forced rotations, Slack-only approvals (two), so twenty trials need no 24-hour wait."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kerberos_sandbox.sandbox import SANDBOX_GROUPS, Sandbox, seed
from kerberos_sandbox.slack_requests import (
    block_actions_payload,
    interaction_form,
    send_slash_command,
    slash_command_form,
)

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import ChangeRequest, RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.support.served import ServeProcess, start_serve

pytestmark = pytest.mark.samba

REDIS_URL = "redis://127.0.0.1:6379/12"  # the served bots' default key prefix, in a database of their own
SECRET = "two-replicas-secret"
GROUP = next(iter(SANDBOX_GROUPS))
APPROVERS = [f"U0APPROVER{i:02}" for i in range(20)]
TRIALS = 20


def blocks_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks", [])
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


@dataclass
class Replicas:
    box: Sandbox
    served: list[ServeProcess]
    store: RedisApprovalStore

    async def command(self, text: str, channel: str, user: str) -> None:
        url = self.box.slack.new_response_url()
        form = slash_command_form(text, response_url=url, channel_id=channel, user_id=user)
        ack = await send_slash_command(self.box.session, f"{self.served[0].base}/slack/events", SECRET, form)
        assert ack.status == 200, ack.body
        replies = await self.box.slack.wait_for_responses(url, 1, timeout=30.0)
        assert "posted for approval" in json.dumps(replies), replies

    async def click(self, replica: ServeProcess, user: str, value: str, channel: str, ts: str) -> int:
        payload = block_actions_payload(
            user_id=user, action_id=APPROVE_ACTION, value=value, channel_id=channel, message_ts=ts
        )
        ack = await send_slash_command(
            self.box.session, f"{replica.base}/slack/events", SECRET, interaction_form(payload)
        )
        return ack.status

    async def finished(self, request_id: str) -> ChangeRequest:
        for _ in range(600):
            request = await self.store.get(request_id)
            if request is not None and request.state.is_final:
                return request
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {request_id} did not finish: {await self.store.get(request_id)}")

    async def last_card_when_quiet(self, ts: str, quiet: float = 1.0, timeout: float = 30.0) -> dict[str, Any]:
        """The card's last update once no update of it has come for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen, since = -1, loop.time()
        while loop.time() < deadline:
            updates = [c.body for c in self.box.slack.api_calls("chat.update") if c.body.get("ts") == ts]
            if len(updates) != seen:
                seen, since = len(updates), loop.time()
            elif updates and loop.time() - since >= quiet:
                return updates[-1]
            await asyncio.sleep(0.1)
        raise AssertionError(f"the card {ts} never settled")


async def _healthy(served: ServeProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert served.proc.returncode is None, f"kerberos-bot serve exited with {served.proc.returncode}"
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(f"{served.health}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("kerberos-bot serve did not start")


@pytest.fixture
async def replicas(box: Sandbox, tmp_path: Path) -> AsyncIterator[Replicas]:
    await seed(box.domains, box.components)
    text = box.config_path.read_text(encoding="utf-8")
    # Slack-only approvals: a forced rotation approved by two clicks, no sign-in
    text = re.sub(r"\[approvals\.(verification|rotate_force|remove_tdo|setup|remove_all)\][^\[]*", "", text)
    slack_only = "".join(
        f"[approvals.{key}]\nverified_approval = false\n\n" for key in ("remove_tdo", "setup", "remove_all")
    )
    text = text.replace(
        "[kerberos_module]",
        f"[approvals.rotate_force]\nverified_approval = false\napprovals_required = 2\n\n{slack_only}[kerberos_module]",
    )
    config = tmp_path / "kerberos-bot.toml"
    config.write_text(text + "\nrequests_per_hour = 1000\n", encoding="utf-8")  # [changes] is the last table
    members = box.slack.user_groups.get(GROUP)
    box.slack.user_groups[GROUP] = [*(members or []), *APPROVERS]
    served = [
        await start_serve(box, secret=SECRET, redis_url=REDIS_URL, config=config, command_workers=0) for _ in range(2)
    ]
    store = RedisApprovalStore(connect(REDIS_URL))  # the served bot's default keyspace
    try:
        for replica in served:
            await _healthy(replica)
        yield Replicas(box, served, store)
    finally:
        for replica in served:
            if replica.proc.returncode is None:
                replica.proc.terminate()
                await replica.proc.wait()
        if members is None:
            box.slack.user_groups.pop(GROUP, None)
        else:
            box.slack.user_groups[GROUP] = members
        client = connect(REDIS_URL)
        async for key in client.scan_iter(match="{kerberos-bot}:*"):
            await client.delete(key)
        await client.aclose()
        await store.close()
        await seed(box.domains, box.components)


async def test_twenty_approvers_on_two_replicas_the_change_runs_once_and_the_last_card_is_done(
    replicas: Replicas,
) -> None:
    slack = replicas.box.slack
    settled: list[asyncio.Task[str | None]] = []  # each trial's last card, watched while the next trial runs
    try:
        for trial in range(TRIALS):
            # a channel and a requester each, as in a company: the bot paces its posts to one channel (a requester's
            # direct messages too) at Slack's one a second, and one person's three messages a trial set the pace
            channel, requester = f"C0TRIAL{trial:02}", f"U0REQUESTER{trial:02}"
            posted = len(slack.channel_posts())
            await replicas.command(f"rotate contoso.test --force -- trial {trial}", channel, requester)
            cards = [
                c.body for c in slack.channel_posts()[posted:] if any(b["type"] == "actions" for b in blocks_of(c.body))
            ]
            [actions] = [b for b in blocks_of(cards[-1]) if b["type"] == "actions"]
            value = actions["elements"][0]["value"]
            ts = await _card_ts(replicas, value)
            clicks = [
                replicas.click(replicas.served[i % 2], approver, value, channel, ts)
                for i, approver in enumerate(APPROVERS)
            ]
            assert set(await asyncio.gather(*clicks)) == {200}
            request = await replicas.finished(value.split(".", 1)[0])
            assert request.state == RequestState.SUCCEEDED, request.outcome
            assert sum(1 for line in request.journal if "module call started" in line) == 1  # ran once
            settled.append(asyncio.create_task(_wrong_last_card(replicas, trial, ts)))
        wrong = [found for found in await asyncio.gather(*settled) if found is not None]
    finally:
        for watching in settled:  # a trial that failed leaves the others' watches: stopped with the test
            watching.cancel()
    assert not wrong, wrong


async def _wrong_last_card(replicas: Replicas, trial: int, ts: str) -> str | None:
    """What is wrong with the card of a finished trial once it has settled, or None."""
    last = await replicas.last_card_when_quiet(ts)
    shown = json.dumps(blocks_of(last))
    if "Done" not in shown or any(b["type"] == "actions" for b in blocks_of(last)):
        return f"trial {trial}: {shown[:300]}"
    return None


async def _card_ts(replicas: Replicas, value: str) -> str:
    """Where the card of the request ``value`` names is (the store learnt it when the card was posted)."""
    for _ in range(100):
        request = await replicas.store.get(value.split(".", 1)[0])
        if request is not None and request.card:
            return request.card
        await asyncio.sleep(0.05)
    raise AssertionError("the card's place was never recorded")
