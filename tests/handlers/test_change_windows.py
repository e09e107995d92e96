"""A domain with change windows, through signed Slack requests and the Web API stand-in: the request's
card says when it would run, the approval outside the window leaves it waiting (card and thread say
until when), `/kerberos requests` shows it waiting, and an approver withdraws it with `/kerberos cancel`."""

from __future__ import annotations

import json
from datetime import timedelta

import aiohttp
from kerberos_sandbox.slack_standin import (
    SlackStandIn,
)

from bot.bootstrap.adapters import slack_client
from bot.domain.approvals import RequestState
from bot.domain.windows import ChangeWindows
from bot.services.container import BotServices
from bot.workers.changes import ChangeWorker
from handlers.notices.worker import SlackChangeNotices
from tests.support.botserver import running_bot
from tests.support.fakes import NOW, on_prem_state
from tests.support.slack_session import Channel
from tests.support.worlds import ADMINS, one_domain

CHANNEL = "C0PLATFORM"
NIGHTS = ChangeWindows.parse([("0 22 * * mon-thu", 4)], "Europe/Berlin")  # NOW is a Wednesday, 12:00 UTC


async def test_approved_outside_the_window_the_card_and_thread_say_when_it_runs_and_an_approver_can_withdraw() -> None:
    world = one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)),
        windows=NIGHTS,
        groups={ADMINS: frozenset({"U0BOB", "U0CAROL"})},
    )
    changes = world.changes
    services = BotServices(status=world.status, changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        people = Channel(slack, bot, session, changes)
        say = people.say

        await say("rotate contoso.test -- quarterly", "U0ALICE")
        [card] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == CHANNEL)
        shown = json.dumps(card.body)
        assert "When it runs:" in shown and "closed now" in shown
        assert "Wed 2026-11-25 22:00 Europe/Berlin (2026-11-25 21:00 UTC)" in shown
        [request] = await changes.queries.pending_or_recent()

        await people.click(request.id, "U0BOB")
        await slack.wait_for_api("chat.update", where=lambda c: "Approved" in json.dumps(c.body))

        client = slack_client(slack.bot_token, slack.api_url)
        worker = ChangeWorker(changes, SlackChangeNotices(client, changes), "worker-1")
        assert await worker.run_once(block_ms=0)
        await slack.wait_for_api(
            "chat.update",
            where=lambda c: "waits for the change window, runs at 2026-11-25 21:00 UTC" in json.dumps(c.body),
        )
        [line] = await slack.wait_for_api(
            "chat.postMessage",
            where=lambda c: bool(c.body.get("thread_ts")) and ":calendar:" in str(c.body.get("text")),
        )
        assert "2026-11-25 21:00 UTC" in str(line.body["text"]) and world.module.set_calls == 0

        assert "waits for the change window" in await say("requests", "U0ALICE")
        assert "Only the person who asked" in await say(f"cancel {request.id}", "U0MALLORY")
        assert "is cancelled" in await say(f"cancel {request.id}", "U0CAROL")
        cancelled = await changes.queries.get(request.id)
        assert cancelled is not None and cancelled.state == RequestState.CANCELLED
