"""`/kerberos freeze` and `thaw` through signed requests: an approver freezes a domain, a rotation asked
for meanwhile is refused with when the freeze ends, a bad end time gets a clear message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.services.changes.holds import freeze_record
from bot.services.container import BotServices
from handlers.commands.freeze import until_of
from tests.support.botserver import running_bot
from tests.support.fakes import (
    NOW,
    FakeFreezes,
    on_prem_state,
)
from tests.support.worlds import one_domain


def test_until_is_a_utc_time_or_a_span() -> None:
    assert until_of("2026-12-24T18:00", NOW) == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    assert until_of("3d", NOW) == NOW + timedelta(days=3) and until_of("90m", NOW) == NOW + timedelta(minutes=90)


ANNOUNCED = {"C0APPROVALS", "C0ALERTS"}


async def test_an_approver_freezes_a_domain_and_a_rotation_meanwhile_is_refused() -> None:
    world = one_domain(
        on_prem_state("contoso.test"),
        clock=lambda: datetime.now(UTC),
        freezes=FakeFreezes(),
        approvals_channel="C0APPROVALS",
    )
    services = BotServices(status=world.status, changes=world.changes, alert_channel="C0ALERTS")
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:

        async def say(text: str, user: str) -> str:
            url = slack.new_response_url()
            form = slash_command_form(text, response_url=url, user_id=user)
            ack = await send_slash_command(session, bot.endpoint, bot.signing_secret, form)
            assert ack.status == 200
            if ack.body and "Checking" not in ack.body:
                return ack.body
            return json.dumps(await slack.wait_for_responses(url, 1))

        assert "is not a time" in await say("freeze contoso.test next-week -- audit", "U0BOB")
        assert "at most 14 days" in await say("freeze contoso.test 9999d -- forever", "U0BOB")
        assert "frozen until" in await say("freeze contoso.test 2d -- year-end change freeze <!channel>", "U0BOB")
        # announced where the domain's requests are approved and in the alert channel, the reason as text
        told = await slack.wait_for_api("chat.postMessage", 2, where=lambda c: c.body["channel"] in ANNOUNCED)
        assert {c.body["channel"] for c in told} == ANNOUNCED
        assert all("<!channel>" not in c.body["text"] and "year-end change freeze" in c.body["text"] for c in told)
        shown = await say("status contoso.test", "U0ALICE")
        assert "Frozen until" in shown and "<@U0BOB>" in shown and "year-end change freeze" in shown
        refused = await say("rotate contoso.test -- quarterly", "U0ALICE")
        assert "frozen until" in refused and "U0BOB" in refused
        assert "Only members of the freeze groups" in await say("thaw contoso.test", "U0ALICE")
        assert "was ended by <@U0BOB>" in await say("thaw contoso.test", "U0BOB")
        await slack.wait_for_api("chat.postMessage", 4, where=lambda c: c.body["channel"] in ANNOUNCED)
    trail = [(e.event, e.actor) for e in await world.store.audit(freeze_record("contoso.test"))]
    assert trail == [("frozen", "U0BOB"), ("thawed", "U0BOB")]
