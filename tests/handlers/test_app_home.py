"""The bot's home page through signed Slack requests: an approver sees the domains (key age, what the
watch saw, the next rotation due) and the requests waiting for them with their buttons, within Slack's
100 blocks; approving there decides as on the card; the requester sees their own requests and turns
their direct messages off there; a request's change redraws the pages of those who opened theirs."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import aiohttp
from kerberos_sandbox.slack_requests import event_body, interaction_form, signed_headers
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.approvals import Action, ActionPolicy, RequestState
from bot.services.container import BotServices
from bot.services.home import HomeService
from handlers.views.home import HOME_APPROVE, HOME_DMS, HOME_MAX_BLOCKS
from tests.support.botserver import RunningBot, running_bot
from tests.support.fakes import NOW, FakeNoticePreferences, on_prem_state
from tests.support.worlds import ADMINS, one_domain
from tests.unit.test_verified_approvals import World as VerifiedWorld

CHANNEL = "C0PLATFORM"


async def send_event(session: aiohttp.ClientSession, bot: RunningBot, event: dict[str, Any]) -> None:
    body = event_body(event)
    headers = {**signed_headers(bot.signing_secret, body), "Content-Type": "application/json"}
    async with session.post(bot.endpoint, data=body, headers=headers) as response:
        assert response.status == 200


async def click_home(session: aiohttp.ClientSession, bot: RunningBot, user: str, action_id: str, value: str) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0STANDIN", "domain": "standin"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0STANDIN"},
        "api_app_id": "A0KERBOT",
        "container": {"type": "view", "view_id": "V0HOME"},
        "view": {"id": "V0HOME", "type": "home", "callback_id": "", "private_metadata": "", "state": {"values": {}}},
        "trigger_id": f"{int(time.time())}.1",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }
    body = interaction_form(payload)
    async with session.post(bot.endpoint, data=body, headers=signed_headers(bot.signing_secret, body)) as response:
        assert response.status == 200


def view_of(call: Any) -> dict[str, Any]:
    view = call.body["view"]
    parsed: dict[str, Any] = json.loads(view) if isinstance(view, str) else view
    return parsed


async def test_an_approver_sees_what_waits_for_them_and_approves_it_from_home() -> None:
    policies = {a: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})) for a in Action}
    world = one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)),
        groups={ADMINS: frozenset({"U0BOB"})},
        policies=policies,
    )
    changes = world.changes
    preferences = FakeNoticePreferences()
    home = HomeService(changes, preferences=preferences, key_max_age=timedelta(days=180))
    services = BotServices(status=world.status, changes=changes, preferences=preferences, home=home)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        for _ in range(20):  # more than a page shows
            await changes.intake.request_rotation(
                "contoso.test", requester="U0ALICE", reason="<!channel> q", force=False
            )
        await send_event(session, bot, {"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"})
        [published] = await slack.wait_for_api("views.publish")
        assert published.body["user_id"] == "U0BOB"
        view = view_of(published)
        text = json.dumps(view)
        assert view["type"] == "home" and len(view["blocks"]) <= HOME_MAX_BLOCKS
        assert "*contoso.test*: KeyVersion 53325, 40 days old; next rotation due 2027-04-" in text
        assert "not watched here" in text and "Waiting for your approval" in text
        assert text.count(HOME_APPROVE) == 10  # the first ten, with their buttons
        assert "<!channel>" not in json.dumps([b for b in view["blocks"] if b["type"] != "context"])
        first, second = [b for b in view["blocks"] if b["type"] == "actions"][:2]
        value = first["elements"][0]["value"]
        request_id = first["block_id"].removeprefix("home-")

        await click_home(session, bot, "U0BOB", HOME_APPROVE, value)
        await slack.wait_for_api("views.publish", 2)
        approved = await changes.queries.get(request_id)
        assert approved is not None and approved.state == RequestState.APPROVED
        assert "Waiting for your approval" in json.dumps(view_of(slack.api_calls("views.publish")[-1]))

        other = second["elements"][0]["value"]
        await click_home(session, bot, "U0MALLORY", HOME_APPROVE, other)  # not an approver: refused, by DM
        [dm] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == "D0MALLORY")
        assert "not in a group allowed to approve" in json.dumps(dm.body)


async def test_the_requester_sees_their_requests_turns_direct_messages_off_and_their_page_follows_changes() -> None:
    world = one_domain(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    changes = world.changes
    preferences = FakeNoticePreferences()
    home = HomeService(changes, preferences=preferences)
    services = BotServices(status=world.status, changes=changes, preferences=preferences, home=home)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        await send_event(session, bot, {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
        [empty] = await slack.wait_for_api("views.publish")
        assert "None yet" in json.dumps(view_of(empty)) and "Turn off" in json.dumps(view_of(empty))
        await send_event(session, bot, {"type": "app_home_opened", "user": "U0ALICE", "tab": "messages"})
        request = await changes.intake.request_rotation(
            "contoso.test", requester="U0ALICE", reason="q", force=False, channel=CHANNEL
        )
        await changes.decisions.card_posted(request.id, CHANNEL, "1.000001")  # the card is up: her page is redrawn
        [_, redrawn] = await slack.wait_for_api("views.publish", 2)
        assert request.id in json.dumps(view_of(redrawn))
        await click_home(session, bot, "U0ALICE", HOME_DMS, "off")
        await slack.wait_for_api("views.publish", 3)
        assert await preferences.muted("U0ALICE")
        assert "Turn on" in json.dumps(view_of(slack.api_calls("views.publish")[-1]))


async def test_a_change_redraws_the_pages_of_those_it_concerns_only() -> None:
    world = one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)), groups={ADMINS: frozenset({"U0BOB"})}
    )
    changes = world.changes
    preferences = FakeNoticePreferences()
    services = BotServices(
        status=world.status,
        changes=changes,
        preferences=preferences,
        home=HomeService(changes, preferences=preferences),
    )
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        for user in ("U0ALICE", "U0BOB", "U0MALLORY"):
            await send_event(session, bot, {"type": "app_home_opened", "user": user, "tab": "home"})
        await slack.wait_for_api("views.publish", 3)
        request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
        await changes.decisions.card_posted(request.id, CHANNEL, "1.000001")
        redrawn = [c.body["user_id"] for c in slack.api_calls("views.publish")[3:]]
        assert sorted(redrawn) == ["U0ALICE", "U0BOB"]  # the requester and the approver; not a bystander


async def test_a_domain_with_an_approvals_channel_is_approved_there_not_from_home() -> None:
    world = one_domain(
        on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)),
        groups={ADMINS: frozenset({"U0BOB"})},
        approvals_channel="C0APPROVALS",
    )
    changes = world.changes
    preferences = FakeNoticePreferences()
    home = HomeService(changes, preferences=preferences)
    services = BotServices(status=world.status, changes=changes, preferences=preferences, home=home)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        request = await changes.intake.request_rotation(
            "contoso.test", requester="U0ALICE", reason="q", force=False, origin="T0STANDIN/A0KERBOT/C0APPROVALS"
        )
        await changes.decisions.card_posted(request.id, "C0APPROVALS", "1700000000.000100")
        await click_home(session, bot, "U0BOB", HOME_APPROVE, changes.decisions.button_value(request))
        [dm] = await slack.wait_for_api("chat.postMessage", where=lambda c: c.body.get("channel") == "D0BOB")
        assert "approved on its card" in json.dumps(dm.body)
        still = await changes.queries.get(request.id)
        assert still is not None and still.state == RequestState.PENDING and still.approvals == ()


async def test_an_event_slack_delivers_again_is_handled_once() -> None:
    world = one_domain(on_prem_state("contoso.test"), groups={ADMINS: frozenset({"U0BOB"})})
    preferences = FakeNoticePreferences()
    home = HomeService(world.changes, preferences=preferences)
    services = BotServices(status=world.status, changes=world.changes, preferences=preferences, home=home)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        body = event_body({"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"})
        for retry in (None, "1", "2"):  # the first delivery, then Slack's retries of it (new signatures)
            headers = {**signed_headers(bot.signing_secret, body), "Content-Type": "application/json"}
            if retry:
                headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
            async with session.post(bot.endpoint, data=body, headers=headers) as response:
                assert response.status == 200
        await slack.wait_for_api("views.publish")
        other = event_body({"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"})
        await send_event(session, bot, json.loads(other)["event"])  # a new event (a new id) is handled
        await slack.wait_for_api("views.publish", 2)
        assert len(slack.api_calls("views.publish")) == 2  # the retries published nothing


async def test_an_approval_that_needs_a_sign_in_starts_it_from_home_and_tells_the_approver_by_direct_message() -> None:
    # the forced rotation needs two approvals, each with its approver's own Entra sign-in (fakes of Entra)
    world = VerifiedWorld()
    request_id = await world.forced()
    preferences = FakeNoticePreferences()
    home = HomeService(world.service, preferences=preferences)
    status = one_domain(on_prem_state("contoso.test")).status
    services = BotServices(
        status=status, changes=world.service, preferences=preferences, home=home, verification=world.verification
    )
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        await send_event(session, bot, {"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"})
        [published] = await slack.wait_for_api("views.publish")
        [value] = [
            b["elements"][0]["value"] for b in view_of(published)["blocks"] if b.get("block_id") == f"home-{request_id}"
        ]

        await click_home(session, bot, "U0BOB", HOME_APPROVE, value)
        # the sign-in link, made for this approval, only for Bob, in his conversation with the bot
        [prompt] = await slack.wait_for_api("chat.postEphemeral", where=lambda c: c.body.get("channel") == "D0BOB")
        assert prompt.body["user"] == "U0BOB"
        state = world.browser.started[-1]["state"]
        assert f"https://login.test/authorize?state={state}" in json.dumps(prompt.body)
        pending = await world.service.queries.get(request_id)
        assert pending is not None and pending.approvals == ()  # nothing counts before the sign-in

        # Bob signs in; the bot's page names the change and he confirms it: only that approves
        answer = world.browser.sign_in(state, "bob@contoso.test")
        async with session.post(f"{bot.url}/auth/callback", data=answer) as page:
            assert page.status == 200
            token = re.search(r'name="token" value="([^"]+)"', await page.text())
        assert token is not None
        confirm = {"token": token.group(1), "decision": "approve"}
        async with session.post(f"{bot.url}/auth/confirm", data=confirm) as page:
            assert page.status == 200 and "Your approval is recorded (1 of 2)" in await page.text()
        approved = await world.service.queries.get(request_id)
        assert approved is not None and [(a.approver, a.identity and a.identity.upn) for a in approved.approvals] == [
            ("U0BOB", "bob@contoso.test")
        ]
        # his page follows: the request no longer waits for him
        redrawn = await slack.wait_for_api("views.publish", 2, where=lambda c: c.body.get("user_id") == "U0BOB")
        assert f"home-{request_id}" not in json.dumps(view_of(redrawn[-1]))
