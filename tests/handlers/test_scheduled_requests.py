"""What the scheduler files reaches Slack as any request does: its card in the domain's channel (through
the Web API stand-in), approvable there only (the origin is learned from auth.test and bots.info), by a
signed click; the watch's findings are posted once each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import aiohttp
from kerberos_sandbox.slack_requests import (
    block_actions_payload,
    interaction_form,
    send_slash_command,
    signed_headers,
    slash_command_form,
)
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.adapters.slack.origin import SlackOrigins
from bot.bootstrap.adapters import slack_client
from bot.domain.approvals import Action, ActionPolicy, RequestState
from bot.domain.findings import Finding, Severity
from bot.services.container import BotServices
from bot.services.lifecycle import DomainSchedule, LifecycleService, WatchReport
from bot.workers.scheduler import LifecycleScheduler
from handlers.notices.scheduler import SlackLifecycleNotices
from handlers.views.cards import APPROVE_ACTION
from tests.support.botserver import running_bot
from tests.support.fakes import (
    NOW,
    FakeLeadership,
    FakeSchedulerMemory,
    on_prem_state,
)
from tests.support.worlds import one_domain

CHANNEL = "C0PLATFORM"


async def test_a_scheduled_rotation_is_carded_in_its_channel_and_approved_there_by_a_click() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=95)))
    changes, status = world.changes, world.status
    services = BotServices(status=status, changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        client = slack_client(slack.bot_token, slack.api_url)
        lifecycle = LifecycleService(
            changes=changes,
            status=status,
            memory=FakeSchedulerMemory(),
            schedules=[DomainSchedule("contoso.test", CHANNEL, timedelta(days=90))],
            clock=lambda: NOW,
            origin_of=SlackOrigins(client).origin_of,
        )
        scheduler = LifecycleScheduler(
            lifecycle, FakeLeadership(lambda: NOW), SlackLifecycleNotices(client, changes), "w1", clock=lambda: NOW
        )
        assert await scheduler.run_once()
        [card] = [c.body for c in slack.api_calls("chat.postMessage") if c.body.get("channel") == CHANNEL]
        shown = json.dumps(card)
        assert "Requested by* `kerberos-bot`" in shown and "every 90 days" in shown
        [request] = await changes.queries.pending_or_recent()
        assert request.origin == f"T0STANDIN/A0KERBOT/{CHANNEL}" and request.card

        async def click(channel: str) -> None:
            payload = block_actions_payload(
                user_id="U0BOB",
                action_id=APPROVE_ACTION,
                value=changes.decisions.button_value(request),
                channel_id=channel,
                message_ts=str(request.card),
            )
            form = interaction_form(payload)
            async with session.post(bot.endpoint, data=form, headers=signed_headers(bot.signing_secret, form)) as r:
                assert r.status == 200

        await click("C0ELSEWHERE")  # the card's buttons count in its channel only
        assert (await changes.queries.get(request.id)).state == RequestState.PENDING  # type: ignore[union-attr]
        await click(CHANNEL)
        await slack.wait_for_api("chat.update", where=lambda c: "Approved" in json.dumps(c.body))
        assert (await changes.queries.get(request.id)).state == RequestState.APPROVED  # type: ignore[union-attr]


async def test_the_watch_posts_a_finding_once() -> None:
    world = one_domain(on_prem_state("contoso.test"))
    good = world.module.cloud["contoso.test"]
    world.module.cloud["contoso.test"] = replace(good, key_version=good.key_version + 1)  # AD and Entra out of step
    changes, status = world.changes, world.status
    async with SlackStandIn() as slack:
        client = slack_client(slack.bot_token, slack.api_url)
        lifecycle = LifecycleService(
            changes=changes,
            status=status,
            memory=FakeSchedulerMemory(),
            schedules=[DomainSchedule("contoso.test", CHANNEL)],
            clock=lambda: NOW,
        )
        scheduler = LifecycleScheduler(
            lifecycle,
            FakeLeadership(lambda: NOW),
            SlackLifecycleNotices(client, changes),
            "w1",
            clock=lambda: NOW,
            tick=timedelta(0),
            watch_every=timedelta(0),  # every tick looks: what keeps it from repeating itself is its memory
        )
        await scheduler.run_once()
        [posted] = slack.api_calls("chat.postMessage")
        assert posted.body["channel"] == CHANNEL and "Key versions differ" in posted.body["text"]
        await scheduler.run_once()  # the same finding, a tick later: not again
        assert len(slack.api_calls("chat.postMessage")) == 1


async def test_a_finding_while_a_change_is_with_an_operator_names_the_request_in_the_channel() -> None:
    async with SlackStandIn() as slack:
        client = slack_client(slack.bot_token, slack.api_url)
        finding = Finding("key_version_drift", Severity.CRITICAL, "Key versions differ <b>", "Rotate with --force.")
        notices = SlackLifecycleNotices(client, one_domain(on_prem_state("contoso.test")).changes)
        await notices.watched(WatchReport("contoso.test", CHANNEL, finding, False, operator_request="0a1b2c3d4e"))
        [posted] = slack.api_calls("chat.postMessage")
        text = posted.body["text"]
        assert "Request `0a1b2c3d4e` of this domain was handed to an operator" in text
        assert "&lt;b&gt;" in text  # the summary stays text


async def test_rotate_twice_asks_for_a_double_rotation_and_the_card_says_so() -> None:
    world = one_domain(on_prem_state("contoso.test"))
    changes = world.changes
    services = BotServices(status=world.status, changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        url = slack.new_response_url()
        form = slash_command_form("rotate contoso.test --twice -- retire the old key too", response_url=url)
        ack = await send_slash_command(session, bot.endpoint, bot.signing_secret, form)
        assert ack.status == 200
        [card] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == CHANNEL)
        assert "double rotation: the second follows after 24 hours" in json.dumps(card.body)
        [request] = await changes.queries.pending_or_recent()
        assert request.twice and request.action == Action.ROTATE


async def test_the_digest_is_posted_to_the_channel_with_the_domain_s_key_age() -> None:
    from bot.services.lifecycle import Digest, DomainDigest
    from handlers.views.digest import digest_message

    line = DomainDigest(
        "contoso.test", timedelta(days=200), timedelta(days=180), timedelta(days=180), 1, 2, 0, ("<!here> x",)
    )
    message = digest_message(Digest(CHANNEL, NOW - timedelta(days=7), NOW, (line,)))
    shown = json.dumps(message.payload())
    assert "last 7 days" in shown and "key 200 days old (rotates every 180 days)" in shown
    assert "1 rotation done" in shown and "2 requests denied or failed" in shown and "0 requests expired" in shown
    assert "<!here>" not in shown  # what a finding says never pings anyone


async def test_emergency_rotate_tells_the_alert_channel_with_the_reason_as_plain_text() -> None:
    policies = {a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"})) for a in Action}
    policies[Action.EMERGENCY_ROTATE] = ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({"S0BREAKGLASS"}))
    world = one_domain(on_prem_state("contoso.test"), groups={"S0BREAKGLASS": frozenset({"U0DAVE"})}, policies=policies)
    changes = world.changes
    services = BotServices(status=world.status, changes=changes, alert_channel="C0ALERTS")
    hostile = "<!channel> token leaked <https://evil.test|see>"
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        form = slash_command_form(f"emergency-rotate contoso.test -- {hostile}", response_url=slack.new_response_url())
        assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
        # the card and the alarm (the requester's direct message may come in between)
        posts = await slack.wait_for_api("chat.postMessage", 2, where=lambda p: p.body["channel"][0] == "C")
        card, alarm = (next(p.body for p in posts if p.body["channel"] == c) for c in ("C0PLATFORM", "C0ALERTS"))
        assert "Emergency rotation (suspected compromise)" in json.dumps(card)
        blocks = json.loads(alarm["blocks"]) if isinstance(alarm["blocks"], str) else alarm["blocks"]
        [said, reason] = blocks
        assert "an emergency rotation was requested" in said["text"]["text"] and "<@U0ALICE>" in said["text"]["text"]
        assert reason["elements"][0]["type"] == "plain_text" and hostile in reason["elements"][0]["text"]
        assert "<!channel>" not in said["text"]["text"] and "<!channel>" not in alarm["text"]
