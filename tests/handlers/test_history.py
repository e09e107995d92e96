"""`/kerberos history <domain>` through a signed request: the domain's requests with their audit and
Entra's KerberosDomain audit events; a hostile reason stays plain text; an unknown domain is refused
before the acknowledgement."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import send_slash_command, slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.approvals import Action, ActionPolicy
from bot.services.changes.engine import ChangeEngine
from bot.services.container import BotServices
from bot.services.status import StatusService
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import (
    NOW,
    FakeDirectory,
    FakeEntra,
    FakeGroups,
    FakeKerberosModule,
    audit_event,
    on_prem_state,
)

HOSTILE = "<!channel> *urgent* <https://evil.test|click>"


@pytest.fixture
async def history() -> AsyncIterator[tuple[ChangeEngine, FakeEntra, SlackStandIn, str, str]]:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test")),
        "fabrikam.test": FakeDirectory(on_prem_state("fabrikam.test", with_tdo=False)),
    }
    module = FakeKerberosModule.in_step(directories)
    entra = FakeEntra(events=[audit_event("contoso.test", NOW - timedelta(days=1))])
    changes = engine_on_fakes(
        store=FakeApprovalStore(),
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB"})}),
        policies={Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({"S0ADMINS"}))},
        clock=lambda: NOW,
        entra=entra,
    )
    services = BotServices(status=StatusService(directories, module, entra, clock=lambda: NOW), changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot:
        yield changes, entra, slack, bot.endpoint, bot.signing_secret


async def ask(slack: SlackStandIn, endpoint: str, secret: str, text: str):  # type: ignore[no-untyped-def]
    url = slack.new_response_url()
    async with aiohttp.ClientSession() as session:
        ack = await send_slash_command(session, endpoint, secret, slash_command_form(text, response_url=url))
    return ack, url


async def test_history_lists_the_domains_requests_with_their_audit_and_entras_events(history) -> None:  # type: ignore[no-untyped-def]
    changes, _entra, slack, endpoint, secret = history
    mine = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason=HOSTILE, force=False)
    await changes.decisions.approve(mine.id, "U0BOB")
    other = await changes.intake.request_rotation("fabrikam.test", requester="U0ALICE", reason="elsewhere", force=False)
    ack, url = await ask(slack, endpoint, secret, "history contoso.test")
    assert ack.status == 200 and "Reading the history of contoso.test" in ack.body
    [reply] = await slack.wait_for_responses(url)
    text = json.dumps(reply)
    assert mine.id in text and other.id not in text
    assert "requested by <@U0ALICE>" in text and "approved by <@U0BOB>" in text
    assert "Update kerberos domain" in text and "admin@contoso.test" in text
    # the requester's words only as plain text, never as markup
    plain = [e for b in reply["blocks"] if b["type"] == "context" for e in b["elements"] if HOSTILE in e["text"]]
    assert plain and all(e["type"] == "plain_text" for e in plain)
    assert not any(HOSTILE in b.get("text", {}).get("text", "") for b in reply["blocks"] if b["type"] == "section")


async def test_history_says_when_entra_cannot_be_read_and_refuses_an_unknown_domain(history) -> None:  # type: ignore[no-untyped-def]
    from bot.domain.errors import EntraUnavailable

    _changes, entra, slack, endpoint, secret = history
    entra.error = EntraUnavailable("Microsoft Graph did not answer in time.")
    _, url = await ask(slack, endpoint, secret, "history contoso.test")
    [reply] = await slack.wait_for_responses(url)
    assert "Entra's audit log: Microsoft Graph did not answer in time." in json.dumps(reply)
    assert "No change requests for this domain" in json.dumps(reply)
    ack, _ = await ask(slack, endpoint, secret, "history nowhere.test")
    assert ack.status == 200 and "nowhere.test" in ack.body and "contoso.test" in ack.body
