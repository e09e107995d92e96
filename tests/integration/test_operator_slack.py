"""Operator-executes mode end to end, driven as Slack would: a forced rotation approved by two in Slack is
handed to a third person of the operator group, whose card shows the exact command with their own
-UserPrincipalName; the emulator plays that operator at the management host (Entra's audit log names them);
the bot concludes from the Samba DC and the Entra stand-in's audit log alone. A change run by someone else
is reported as such. A change handed to someone who is away is taken over by another who may run it: the card
then shows the taker's own command, the one first named hears it, and the taker's change is verified. On the
sandbox's real parts: signed requests, Redis, the Samba DC, the stand-ins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.sandbox import SANDBOX_PEOPLE, Sandbox, sandbox

from bot.adapters.kerberos_module.emulator.module import KerberosModuleEmulator
from bot.domain.approvals import ChangeRequest, RequestState
from bot.domain.operators import handover_of
from bot.domain.ports import SetServerOptions
from handlers.views.cards import APPROVE_ACTION, TAKE_OVER_ACTION
from tests.integration.test_rotate_slack import blocks_of, click, request_via_slack, wait_for_state
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba
DOMAIN = "contoso.test"

OPERATOR_MODE = """
[operators]
groups = ["S0KERBADMINS"]
time_limit_minutes = 30

[approvals.rotate_force]
verified_approval = false
execution = "operator"

# one approval: of the group, Bob (its approver), Carol and Dave may each be named, and take it over
[approvals.remove_tdo]
verified_approval = false
approvals_required = 1
execution = "operator"
"""


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    workdir = Path(tmp_path_factory.mktemp("sandbox"))
    async with sandbox(sandbox_domains()[:1], workdir=workdir, extra_config=OPERATOR_MODE) as up:
        yield up


async def approved_by_two(box: Sandbox) -> tuple[ChangeRequest, str]:
    request, value, ts = await request_via_slack(box, f"rotate {DOMAIN} --force -- after the trust's setup")
    for approver in ("U0BOB", "U0CAROL"):
        assert await click(box, approver, APPROVE_ACTION, value, ts) == 200
    handed = await wait_for_state(box, request.id, {RequestState.WITH_OPERATOR, RequestState.FAILED})
    assert handed.state == RequestState.WITH_OPERATOR, handed.outcome
    return handed, ts


async def operator_runs(box: Sandbox, upn: str) -> None:
    """The operator at the management host: Microsoft's module, signed in as ``upn`` with MFA."""
    module = box.components.module
    assert isinstance(module, KerberosModuleEmulator)
    at_the_host = module.signed_in_as(upn)
    try:
        await at_the_host.set_server(
            DOMAIN, SetServerOptions(rotate_server_key=True, force=True, setup_cloud_trust=True)
        )
    finally:
        await at_the_host.close()


async def card_text(box: Sandbox, ts: str, wanted: str) -> str:
    for _ in range(100):
        updates = [c.body for c in box.slack.api_calls("chat.update") if c.body.get("ts") == ts]
        if updates and wanted in (text := json.dumps(blocks_of(updates[-1]))):
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"the card never said {wanted!r}")


async def test_the_named_operator_runs_it_and_the_bot_verifies_it_from_ad_and_entra(box: Sandbox) -> None:
    directory = box.components.directories[DOMAIN]
    before = await directory.read_kerberos_objects()
    assert before.server is not None and before.server.key is not None
    await asyncio.sleep(1.1)  # replication metadata has one-second resolution
    request, ts = await approved_by_two(box)
    # requester Alice, approvers Bob and Carol (two required): of the group, Dave runs it
    card = await card_text(box, ts, "Operator")
    assert "U0DAVE" in card and "dave@contoso.test" in card
    assert (
        "Set-AzureADKerberosServer -Domain 'contoso.test' -UserPrincipalName 'dave@contoso.test' "
        "-DomainCredential $domainCred -SetupCloudTrust -TopLevelNames 'windows.net' -RotateServerKey -Force"
    ) in card
    assert f"/kerberos take {request.id}" in card  # if Dave is away, who else may run it knows how
    thread = [c.body["text"] for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
    assert any("handed to <@U0DAVE>" in t for t in thread), thread
    unchanged = await directory.read_kerberos_objects()
    assert unchanged.server is not None and unchanged.server.key == before.server.key  # the bot ran nothing

    # only the named operator may say it ran; their word alone concludes nothing
    _, replies = await box.command(f"done {request.id}", user_id="U0MALLORY")
    assert "handed to another operator" in json.dumps(replies)
    _, replies = await box.command(f"done {request.id}", user_id="U0DAVE")
    assert "not seen yet" in json.dumps(replies) and "nothing was changed yet" in json.dumps(replies)

    await operator_runs(box, "dave@contoso.test")
    _, replies = await box.command(f"done {request.id}", user_id="U0DAVE")
    said = json.dumps(replies)
    assert "Verified by dave@contoso.test" in said, said
    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED})
    assert "Entra's audit log records 'Update kerberos domain' by dave@contoso.test" in (done.outcome or "")
    after = await directory.read_kerberos_objects()
    assert after.server is not None and after.server.key is not None
    assert after.server.key.version > before.server.key.version
    card = await card_text(box, ts, "Done")
    assert "Run by" in card and "Verified by dave@contoso.test" in card


async def test_a_change_run_by_someone_else_is_reported_not_verified(box: Sandbox) -> None:
    await asyncio.sleep(1.1)
    request, ts = await approved_by_two(box)
    await operator_runs(box, "mallory@contoso.test")
    _, replies = await box.command(f"done {request.id}", user_id="U0DAVE")
    said = json.dumps(replies)
    assert "Needs attention" in said and "mallory@contoso.test" in said, said
    flagged = await wait_for_state(box, request.id, {RequestState.ATTENTION})
    assert "not only by dave@contoso.test" in (flagged.outcome or "")
    await card_text(box, ts, "Needs attention")


async def test_only_an_operator_who_may_run_it_takes_it_over(box: Sandbox) -> None:
    await asyncio.sleep(1.1)
    request, _ = await approved_by_two(box)
    # Bob approved it, and it needs two: he may not run it, nor take it over; Mallory is no operator
    for outsider in ("U0BOB", "U0MALLORY"):
        _, replies = await box.command(f"take {request.id}", user_id=outsider)
        assert f"You cannot run request {request.id}" in json.dumps(replies)
    _, replies = await box.command(f"take {request.id}", user_id="U0DAVE")
    assert "already yours" in json.dumps(replies)
    await operator_runs(box, "dave@contoso.test")
    _, replies = await box.command(f"done {request.id}", user_id="U0DAVE")
    assert "Verified by dave@contoso.test" in json.dumps(replies)
    # once AD changed, nobody takes it over
    _, replies = await box.command(f"take {request.id}", user_id="U0DAVE")
    assert "not waiting for an operator" in json.dumps(replies)


async def home_says(box: Sandbox, user: str, wanted: str, *, says: bool = True) -> None:
    """Until the last home page published for ``user`` says ``wanted`` (or, ``says`` False, no longer does)."""
    for _ in range(100):
        pages = [c.body for c in box.slack.api_calls("views.publish") if c.body.get("user_id") == user]
        if pages and (wanted in json.dumps(pages[-1].get("view"))) == says:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user}'s home page never {'said' if says else 'stopped saying'} {wanted!r}")


async def test_another_operator_takes_it_over_and_their_change_is_verified(box: Sandbox) -> None:
    for user in ("U0BOB", "U0CAROL", "U0DAVE"):
        assert (await box.event({"type": "app_home_opened", "user": user, "tab": "home"})).status == 200
    request, value, ts = await request_via_slack(box, f"remove-tdo {DOMAIN} -- the trust moves to a new forest")
    assert await click(box, "U0BOB", APPROVE_ACTION, value, ts) == 200
    handed = await wait_for_state(box, request.id, {RequestState.WITH_OPERATOR, RequestState.FAILED})
    first = handover_of(handed)
    assert handed.state == RequestState.WITH_OPERATOR and first is not None, handed.outcome
    taker = next(u for u in ("U0CAROL", "U0DAVE", "U0BOB") if u != first.operator)
    upn = SANDBOX_PEOPLE[taker]
    await home_says(box, first.operator, "Handed to you to run")  # their App Home lists it too

    # the card offers the button; Mallory (no operator) is refused, the taker gets it
    operator_card = await card_text(box, ts, "Take it over")
    value = next(
        e["value"]
        for b in json.loads(operator_card)
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == TAKE_OVER_ACTION
    )
    assert await click(box, "U0MALLORY", TAKE_OVER_ACTION, value, ts) == 200
    refused = await box.slack.wait_for_api("chat.postEphemeral", where=lambda c: c.body.get("user") == "U0MALLORY")
    assert f"You cannot run request {request.id}" in json.dumps([c.body for c in refused])
    assert await click(box, taker, TAKE_OVER_ACTION, value, ts) == 200
    told = await box.slack.wait_for_api("chat.postEphemeral", where=lambda c: c.body.get("user") == taker)
    assert f"Request `{request.id}` is yours to run" in json.dumps([c.body for c in told])
    await home_says(box, taker, "Handed to you to run")
    await home_says(box, first.operator, "Handed to you to run", says=False)
    card = await card_text(box, ts, upn)
    assert f"Remove-AzureADKerberosServerTrustedDomainObject -Domain 'contoso.test' -UserPrincipalName '{upn}'" in card
    thread = [c.body["text"] for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
    assert any(f"<@{taker}> took request {request.id} over from <@{first.operator}>" in t for t in thread), thread
    told = await box.slack.wait_for_api(
        "chat.postMessage", where=lambda c: c.body.get("channel") == "D" + first.operator.removeprefix("U")
    )
    assert any("Do not run it yourself" in json.dumps(c.body) for c in told)

    # the one first named can no longer say it ran; the taker runs it at the management host and says so
    _, replies = await box.command(f"done {request.id}", user_id=first.operator)
    assert "handed to another operator" in json.dumps(replies)
    module = box.components.module
    assert isinstance(module, KerberosModuleEmulator)
    at_the_host = module.signed_in_as(upn)
    try:
        await at_the_host.remove_trusted_domain_object(DOMAIN)
    finally:
        await at_the_host.close()
    _, replies = await box.command(f"done {request.id}", user_id=taker)
    assert f"Verified by {upn}" in json.dumps(replies), replies
    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED})
    assert done.outcome is not None and upn in done.outcome
    assert "Take it over" not in await card_text(box, ts, f"Verified by {upn}")  # concluded: no button left
