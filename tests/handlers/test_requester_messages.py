"""The requester hears every change of their request in a direct message with the card's link: posted,
each approval, approved, done; denied with the reason as plain text; expired; and nothing once they
turned these messages off. The bot's own requests have nobody to tell, and a direct message that
cannot be sent changes nothing else. Through signed requests and the Web API stand-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.bootstrap.adapters import slack_client
from bot.domain.approvals import Action, ActionPolicy
from bot.services.container import BotServices
from bot.workers.changes import ChangeWorker
from handlers.notices.worker import SlackChangeNotices
from tests.support.botserver import running_bot
from tests.support.fakes import NOW, FakeNoticePreferences, on_prem_state
from tests.support.slack_session import Channel
from tests.support.worlds import ADMINS, one_domain

CHANNEL = "C0PLATFORM"


def dms(slack: SlackStandIn, user: str = "U0ALICE") -> list[str]:
    """The direct messages to ``user`` so far, as JSON text."""
    im = "D" + user.removeprefix("U")
    return [json.dumps(c.body) for c in slack.api_calls("chat.postMessage") if c.body.get("channel") == im]


async def test_the_requester_hears_every_step_by_direct_message_until_they_turn_it_off() -> None:
    clock = [datetime.now(UTC)]
    policies = {a: ActionPolicy(2, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action}
    world = one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)),
        groups={ADMINS: frozenset({"U0BOB", "U0CAROL"})},
        policies=policies,
        clock=lambda: clock[0],
    )
    changes = world.changes
    preferences = FakeNoticePreferences()
    services = BotServices(status=world.status, changes=changes, preferences=preferences)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        people = Channel(slack, bot, session, changes)
        say, click = people.say, people.click

        await say("rotate contoso.test -- quarterly")
        [posted] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == "D0ALICE")
        text = json.dumps(posted.body)
        assert "is posted for approval" in text and "2 approvals needed" in text
        assert "https://standin.slack.test/archives/C0PLATFORM/p" in text and "notify off" in text
        [request] = await changes.queries.pending_or_recent()
        await click(request.id, "U0BOB")
        await click(request.id, "U0CAROL")
        await slack.wait_for_api("chat.postMessage", 3, where=lambda c: c.body.get("channel") == "D0ALICE")
        assert "<@U0BOB> approved your request" in dms(slack)[1] and "(1 of 2)" in dms(slack)[1]
        assert "it is approved and starts" in dms(slack)[2]
        worker = ChangeWorker(changes, SlackChangeNotices(slack_client(slack.bot_token, slack.api_url), changes))
        assert await worker.run_once(block_ms=0)
        assert "is done: Rotated" in dms(slack)[3]

        # a denial: the approver's words reach the requester as plain text only
        clock[0] += timedelta(days=2)
        await say("rotate contoso.test -- again")
        await slack.wait_for_api("chat.postMessage", 5, where=lambda c: c.body.get("channel") == "D0ALICE")
        newest = (await changes.queries.pending_or_recent())[0]  # newest first
        denied = await changes.decisions.deny(newest.id, "U0BOB", "<!channel> *not now*")
        assert denied.request is not None
        last = json.loads(dms(slack)[-1])
        assert "denied your request" in json.dumps(last)
        plain = [b for b in last["blocks"] if b["type"] == "context" and b["elements"][0]["type"] == "plain_text"]
        assert plain and "<!channel> *not now*" in plain[0]["elements"][0]["text"]
        assert "<!channel>" not in json.dumps([b for b in last["blocks"] if b not in plain])

        # off: nothing more by direct message; the card and its thread still say it all
        assert "are off" in await say("notify off")
        before = len(dms(slack))
        await say("rotate contoso.test -- a third time")
        await slack.wait_for_api(
            "chat.postMessage",
            where=lambda c: (
                c.body.get("channel") == CHANNEL
                and len([x for x in slack.api_calls("chat.postMessage") if x.body.get("channel") == CHANNEL]) >= 3
            ),
        )
        assert len(dms(slack)) == before
        assert "direct message" in await say("notify on")
        assert not await preferences.muted("U0ALICE")


async def test_a_direct_message_that_cannot_be_sent_changes_nothing_else() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    services = BotServices(status=world.status, changes=world.changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        slack.fail("conversations.open", error="missing_scope")
        url = slack.new_response_url()
        form = slash_command_form("rotate contoso.test -- quarterly", response_url=url, channel_id=CHANNEL)
        assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
        [reply] = await slack.wait_for_responses(url, 1)
        assert "is posted for approval" in json.dumps(reply)
        [card] = [c for c in slack.api_calls("chat.postMessage") if c.body.get("channel") == CHANNEL]
        assert card and not dms(slack)
