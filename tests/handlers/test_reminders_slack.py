"""Reminders, escalation and the requester's nudge in Slack: the reminder in the card's thread pings the
approver groups, the last one says who may approve now and posts a note with the card's link in the
fallback channel, and `/kerberos nudge` reminds once, then tells the requester when they may again."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.bootstrap.adapters import slack_client
from bot.domain.approvals import Action, ActionPolicy, ReminderPolicy
from bot.services.container import BotServices
from bot.services.status import StatusService
from bot.workers.changes import ChangeWorker
from handlers.notices.worker import SlackChangeNotices
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import (
    NOW,
    FakeDirectory,
    FakeEntra,
    FakeGroups,
    FakeKerberosModule,
    FakeRateLimiter,
    on_prem_state,
)
from tests.support.slack_session import Channel

CHANNEL = "C0PLATFORM"


async def test_reminders_escalation_and_nudges_reach_the_thread_and_the_fallback_channel() -> None:
    clock = [NOW]
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    changes = engine_on_fakes(
        store=FakeApprovalStore(),
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB"}), "S0ONCALL": frozenset({"U0FRANK"})}),
        policies={a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"})) for a in Action},
        clock=lambda: clock[0],
        limiter=FakeRateLimiter(lambda: clock[0]),
        reminders=ReminderPolicy((0.5, 0.9), fallback_group="S0ONCALL", fallback_channel="C0ONCALL"),
    )
    services = BotServices(
        status=StatusService(directories, module, FakeEntra(), clock=lambda: clock[0]), changes=changes
    )
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        say = Channel(slack, bot, session, changes).say

        await say("rotate contoso.test -- quarterly")
        [request] = await changes.queries.pending_or_recent()
        worker = ChangeWorker(changes, SlackChangeNotices(slack_client(slack.bot_token, slack.api_url), changes))

        def thread() -> list[str]:
            return [str(c.body.get("text")) for c in slack.api_calls("chat.postMessage") if c.body.get("thread_ts")]

        clock[0] = NOW + timedelta(hours=2, minutes=5)
        await worker.remind()
        [first] = thread()
        assert "Reminder 1 of 2" in first and "<!subteam^S0ADMINS>" in first and "expires at 16:00 UTC" in first
        clock[0] = NOW + timedelta(hours=3, minutes=40)
        await worker.remind()
        await worker.remind()  # once
        [_, last] = thread()
        assert "Reminder 2 of 2" in last and "<!subteam^S0ONCALL> may approve it now" in last
        [note] = [c for c in slack.api_calls("chat.postMessage") if c.body.get("channel") == "C0ONCALL"]
        assert request.id in str(note.body["text"]) and "https://standin.slack.test/archives/" in str(note.body["text"])

        assert "are reminded" in await say(f"nudge {request.id}")
        assert ":wave: <@U0ALICE> asks the approvers" in thread()[-1]
        assert "try again in" in await say(f"nudge {request.id}")
        assert "Only the person who asked" in await say(f"nudge {request.id}", "U0MALLORY")
