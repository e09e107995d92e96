"""`[policy] reader_groups`: where set, status, history and requests answer only the members of those
groups and the approvers; anyone else is told why (issue: status, history and
requests were open to everyone in a channel the bot is in, each status running the module on the
management host)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.approvals import Action, ActionPolicy
from bot.services.container import BotServices
from bot.services.home import HomeService
from bot.services.readers import Readers
from bot.services.status import StatusService
from handlers.views.home import home_view
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state

GROUPS = FakeGroups({"S0ADMINS": frozenset({"U0BOB"}), "S0READERS": frozenset({"U0RITA"})})


@pytest.fixture
async def bot() -> AsyncIterator[tuple[SlackStandIn, str, str, FakeKerberosModule, HomeService]]:
    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test"))}
    module = FakeKerberosModule.in_step(directories)
    changes = engine_on_fakes(
        module=module,
        directories=directories,
        groups=GROUPS,
        policies={Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"}))},
        clock=lambda: NOW,
    )
    readers = Readers(frozenset({"S0READERS"}), directory=GROUPS, approver_groups=frozenset({"S0ADMINS"}))
    status = StatusService(directories, module, FakeEntra(), clock=lambda: NOW)
    home = HomeService(changes, readers=readers)
    services = BotServices(status=status, changes=changes, readers=readers, home=home)
    async with SlackStandIn() as slack, running_bot(services, slack) as running:
        yield slack, running.endpoint, running.signing_secret, module, home


async def answer(slack: SlackStandIn, endpoint: str, secret: str, text: str, user: str) -> str:
    url = slack.new_response_url()
    async with aiohttp.ClientSession() as session:
        ack = await send_slash_command(
            session, endpoint, secret, slash_command_form(text, response_url=url, user_id=user)
        )
    assert ack.status == 200
    return json.dumps(await slack.wait_for_responses(url))


@pytest.mark.parametrize("text", ["status contoso.test", "history contoso.test", "requests"])
async def test_only_readers_and_approvers_read_the_domains(bot, text: str) -> None:  # type: ignore[no-untyped-def]
    slack, endpoint, secret, _module, _home = bot
    refused = await answer(slack, endpoint, secret, text, "U0MALLORY")
    assert "Only the members of this bot's reader groups and its approvers may read" in refused
    for reader in ("U0RITA", "U0BOB"):  # a reader, an approver
        assert "reader groups" not in await answer(slack, endpoint, secret, text, reader)


async def test_the_home_page_shows_the_domains_to_readers_only(bot) -> None:  # type: ignore[no-untyped-def]
    _slack, _endpoint, _secret, _module, home = bot
    stranger = json.dumps(home_view(await home.page("U0MALLORY"), lambda r: r.id, NOW))
    assert "contoso.test" not in stranger and "reader group" in stranger
    assert "contoso.test" in json.dumps(home_view(await home.page("U0RITA"), lambda r: r.id, NOW))
