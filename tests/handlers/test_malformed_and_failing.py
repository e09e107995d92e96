"""Every request to /slack/events is answered: unsigned or malformed bodies get 401 or 400, never 500;
a tampered or failing click is acknowledged and explained to the person who clicked.

Real signed HTTP requests to the bot's endpoint; Web API calls go to the Slack stand-in; the
approver groups are read from the stand-in through the real Slack adapter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import (
    block_actions_payload,
    interaction_form,
    signed_headers,
    slash_command_form,
    view_submission_payload,
)
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.adapters.slack.groups import SlackUserGroups
from bot.bootstrap.adapters import slack_client
from bot.domain.approvals import Action, ActionPolicy, ChangeRequest
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from bot.services.container import BotServices
from bot.services.status import StatusService
from handlers.views.cards import APPROVE_ACTION, DENY_ACTION
from handlers.views.modals import DENY_DIALOG
from tests.support.botserver import RunningBot, running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state

ADMINS = "S0ADMINS"


@dataclass
class Bot:
    running: RunningBot
    slack: SlackStandIn
    session: aiohttp.ClientSession
    changes: ChangeEngine
    store: FakeApprovalStore

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(self.running.endpoint, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def signed(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
        headers = signed_headers(self.running.signing_secret, body)
        headers["Content-Type"] = content_type
        return await self.post(body, headers)

    async def click(self, payload: dict[str, Any]) -> int:
        return (await self.signed(interaction_form(payload)))[0]

    async def ephemeral_to(self, user: str, count: int = 1) -> list[str]:
        calls = await self.slack.wait_for_api(
            "chat.postEphemeral", count, 5, where=lambda c: c.body.get("user") == user
        )
        return [str(c.body.get("text", "")) for c in calls]

    async def new_request(self) -> ChangeRequest:
        request = await self.changes.intake.request_rotation(
            "contoso.test", requester="U0ALICE", reason="q4", force=False
        )
        await self.changes.decisions.card_posted(request.id, "C0PLATFORM", "1700000000.000100")
        return request


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    store = FakeApprovalStore()
    async with SlackStandIn() as slack, aiohttp.ClientSession() as session:
        slack.user_groups[ADMINS] = ["U0BOB", "U0CAROL"]
        client = slack_client(slack.bot_token, slack.api_url)
        policy = ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS}))
        changes = engine_on_fakes(
            store=store,
            module=module,
            directories=directories,
            groups=SlackUserGroups(client),
            policies={action: policy for action in Action},
            clock=lambda: NOW,
        )
        services = BotServices(
            status=StatusService(directories, module, FakeEntra(), clock=lambda: NOW), changes=changes
        )
        async with running_bot(services, slack) as running:
            yield Bot(running, slack, session, changes, store)


def approve_click(value: str, user: str = "U0BOB") -> dict[str, Any]:
    return block_actions_payload(
        user_id=user, action_id=APPROVE_ACTION, value=value, channel_id="C0PLATFORM", message_ts="1700000000.000100"
    )


# -- the gate: signature first, then shape -------------------------------------------------------
async def test_an_unsigned_unparseable_body_is_401_not_500(bot: Bot) -> None:
    status, _ = await bot.post("payload={not json", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401


async def test_a_timestamp_that_is_not_a_number_is_401(bot: Bot) -> None:
    body = slash_command_form("status", response_url=bot.slack.new_response_url())
    headers = signed_headers(bot.running.signing_secret, body)
    headers["X-Slack-Request-Timestamp"] = "abc"
    assert (await bot.post(body, headers))[0] == 401


async def test_a_stale_signed_request_is_401(bot: Bot) -> None:
    body = slash_command_form("status", response_url=bot.slack.new_response_url())
    headers = signed_headers(bot.running.signing_secret, body, timestamp=int(time.time()) - 600)
    assert (await bot.post(body, headers))[0] == 401


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        ("payload={not json", "application/x-www-form-urlencoded", "not JSON"),
        (urlencode({"payload": json.dumps("just a string")}), "application/x-www-form-urlencoded", "not a JSON object"),
        (
            slash_command_form("status", response_url="http://127.0.0.1:9/r"),
            "application/json",
            "labelled JSON",
        ),
        (urlencode({"payload": json.dumps({"type": "block_actions", "actions": "x"})}), "", "`user`"),
        (
            urlencode(
                {"payload": json.dumps({"type": "block_actions", "user": {"id": "U0BOB"}, "actions": "approve"})}
            ),
            "",
            "`actions`",
        ),
        (urlencode({"text": "status"}), "", "neither"),
        # a slash command is a form: the same fields as JSON, or as text, are not one of Slack's bodies
        (
            json.dumps({"command": "/kerberos", "text": "status", "user_id": "U0BOB", "channel_id": "C0PLATFORM"}),
            "application/json",
            "Events API envelope",
        ),
        (slash_command_form("status", response_url="http://127.0.0.1:9/r"), "text/plain", "not text/plain"),
    ],
)
async def test_a_signed_malformed_body_is_400_with_the_reason(bot: Bot, body: str, content_type: str, why: str) -> None:
    status, text = await bot.signed(body, content_type or "application/x-www-form-urlencoded")
    assert status == 400, text
    assert why in json.loads(text)["error"]


# -- the boundary: acknowledged and explained -----------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "0123456789|rotate",  # the old <id>|<action> form
        "0123456789.deadbeefdeadbeefdeadbe",  # the right shape, a MAC the bot did not make
        "x" * 20_000,
        "<!channel>",
    ],
)
async def test_a_tampered_button_value_is_acknowledged_and_explained(bot: Bot, value: str) -> None:
    assert await bot.click(approve_click(value)) == 200
    [text] = await bot.ephemeral_to("U0BOB")
    assert "not made by kerberos-bot" in text and "nothing was changed" in text


async def test_a_click_outside_a_channel_is_explained(bot: Bot) -> None:
    request = await bot.new_request()
    payload = approve_click(bot.changes.decisions.button_value(request))
    del payload["channel"]
    payload["response_url"] = bot.slack.new_response_url()
    assert await bot.click(payload) == 200
    [reply] = await bot.slack.wait_for_responses(payload["response_url"], 1, 5)
    assert "only on a request's card" in reply["text"]
    assert (await bot.changes.queries.get(request.id)).approvals == ()  # type: ignore[union-attr]


async def test_slacks_user_group_api_failing_on_a_cold_cache_is_explained(bot: Bot) -> None:
    request = await bot.new_request()
    bot.slack.fail("usergroups.users.list", status=500, error="internal_error")
    assert await bot.click(approve_click(bot.changes.decisions.button_value(request))) == 200
    [text] = await bot.ephemeral_to("U0BOB")
    assert "cannot tell who may approve" in text and "nothing was changed" in text
    bot.slack.heal("usergroups.users.list")
    assert await bot.click(approve_click(bot.changes.decisions.button_value(request))) == 200
    await bot.slack.wait_for_api("chat.update", 1, 10)  # the card says so once the approval is recorded
    texts = await bot.ephemeral_to("U0BOB", 1)
    assert len(texts) == 1  # approved this time: no refusal
    assert (await bot.changes.queries.get(request.id)).approvals[0].approver == "U0BOB"  # type: ignore[union-attr]


async def test_an_unexpected_error_in_a_click_gets_a_reference(bot: Bot) -> None:
    request = await bot.new_request()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail: CN=krbtgt_AzureAD,DC=contoso,DC=test")

    bot.store.approve = broken  # type: ignore[method-assign,assignment]
    assert await bot.click(approve_click(bot.changes.decisions.button_value(request))) == 200
    [text] = await bot.ephemeral_to("U0BOB")
    assert "reference" in text and "krbtgt" not in text


async def test_a_deny_dialog_with_forged_metadata_is_answered_in_the_dialog(bot: Bot) -> None:
    payload = view_submission_payload(
        user_id="U0BOB",
        callback_id=DENY_DIALOG,
        private_metadata="{not json",
        values={"reason": {"reason": {"type": "plain_text_input", "value": "no"}}},
    )
    status, text = await bot.signed(interaction_form(payload))
    assert status == 200
    answer = json.loads(text)
    assert answer["response_action"] == "update"
    assert "not opened by kerberos-bot" in json.dumps(answer["view"])


async def test_a_deny_click_with_a_tampered_value_opens_no_dialog(bot: Bot) -> None:
    payload = block_actions_payload(
        user_id="U0BOB", action_id=DENY_ACTION, value="<!channel>", channel_id="C0PLATFORM", message_ts="1.2"
    )
    assert await bot.click(payload) == 200
    [text] = await bot.ephemeral_to("U0BOB")
    assert "not made by kerberos-bot" in text
    assert not bot.slack.api_calls("views.open")


class _SlowGroups:
    """Slack's user groups, answering after a while: the click is still at work when the bot closes."""

    def __init__(self, members: dict[str, frozenset[str]]) -> None:
        self._members = members

    async def members(self, group_id: str) -> frozenset[str]:
        await asyncio.sleep(0.2)
        return self._members.get(group_id, frozenset())


async def test_a_click_still_at_work_when_the_bot_closes_is_carried_through_before_it_closes() -> None:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    policy = ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({ADMINS}))
    changes = engine_on_fakes(
        directories=directories,
        groups=_SlowGroups({ADMINS: frozenset({"U0BOB"})}),
        policies={action: policy for action in Action},
        clock=lambda: NOW,
    )
    services = BotServices(
        status=StatusService(directories, FakeKerberosModule.in_step(directories), FakeEntra()), changes=changes
    )
    async with SlackStandIn() as slack, aiohttp.ClientSession() as session:
        async with running_bot(services, slack) as running:
            bot = Bot(running, slack, session, changes, FakeApprovalStore())
            request = await bot.new_request()
            assert await bot.click(approve_click(changes.decisions.button_value(request))) == 200  # acknowledged
            assert not slack.api_calls("chat.update")  # still reading the groups when the bot starts to close
        # closed: the approval was recorded and the card updated before its connections went
        assert (await changes.queries.get(request.id)).approvals[0].approver == "U0BOB"  # type: ignore[union-attr]
        assert slack.api_calls("chat.update")


async def test_a_reason_with_a_control_character_is_refused_with_a_clear_message(bot: Bot) -> None:
    url = bot.slack.new_response_url()
    form = slash_command_form("rotate contoso.test -- quarterly\x1fcontoso.test", response_url=url)
    assert (await bot.signed(form))[0] == 200
    [reply] = await bot.slack.wait_for_responses(url)
    assert "control characters (U+001F)" in json.dumps(reply)
    assert bot.store.requests == {}  # nothing recorded


@pytest.mark.parametrize("where", ["text", "channel_name", "user_name"])
async def test_a_command_with_the_word_payload_anywhere_is_answered_not_dropped(bot: Bot, where: str) -> None:
    # Bolt's own parse took any form holding "payload" for an interaction and answered 404
    url = bot.slack.new_response_url()
    text = "rotate contoso.test -- the payload service needs it" if where == "text" else "help"
    extra = {} if where == "text" else {where: "payload-team"}
    status, body = await bot.signed(slash_command_form(text, response_url=url, **extra))
    assert status == 200, body
    if where == "text":
        await bot.slack.wait_for_api("chat.postMessage")  # the card: the request went through
        assert len(bot.store.requests) == 1
    else:
        assert "/kerberos" in body  # the help


async def test_an_outcome_line_in_the_thread_never_renders_as_markup() -> None:
    from handlers.notices.worker import SlackChangeNotices

    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test"))}
    engine = engine_on_fakes(directories=directories)
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=True)
    await engine.decisions.card_posted(request.id, "C0PLATFORM", "1700000000.000100")
    posted = await engine.queries.get(request.id)
    assert posted is not None
    async with SlackStandIn() as slack:
        notices = SlackChangeNotices(slack_client(slack.bot_token, slack.api_url), engine)
        hostile = "Failed: the module said <!channel> see <https://evil.example|the fix>"
        await notices.carried_out(Execution(posted, False, hostile))
        [line] = [c.body["text"] for c in slack.api_calls("chat.postMessage") if c.body.get("thread_ts")]
    assert "<!channel>" not in line and "<https://" not in line and "&lt;!channel&gt;" in line


async def test_an_older_rendering_landing_last_never_stays_on_the_card() -> None:
    """Clicks and the worker on two replicas update the card at once; one that rendered the request before it
    was done may reach Slack after the worker's "done": it looks again and draws what is stored."""
    from handlers.notices.cards import update_card

    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    engine = engine_on_fakes(directories=directories)
    request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
    await engine.decisions.card_posted(request.id, "C0PLATFORM", "1700000000.000100")
    stale = await engine.queries.get(request.id)  # what a click rendered: still waiting for approval
    assert stale is not None
    await engine.decisions.approve(request.id, "U0BOB")
    assert isinstance(await engine.executor.execute_next("w"), Execution)
    async with SlackStandIn() as slack:
        await update_card(slack_client(slack.bot_token, slack.api_url), engine, stale)
        last = slack.api_calls("chat.update")[-1].body
    shown = json.dumps(last)
    assert "Waiting for approval" not in shown and APPROVE_ACTION not in shown  # the done request, no buttons
