"""remove-tdo, setup (sovereign top-level names) and remove-all through Slack, on the real DCs."""

from __future__ import annotations

import asyncio

import pytest
from kerberos_sandbox.sandbox import Sandbox

from bot.domain.approvals import RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.integration.test_rotate_slack import cards, click, request_via_slack, wait_for_state

pytestmark = pytest.mark.samba


async def approve_and_wait(box: Sandbox, text: str, approvers: list[str]) -> str:
    request, value, ts = await request_via_slack(box, text)
    for user in approvers:
        assert await click(box, user, APPROVE_ACTION, value, ts) == 200
    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
    assert done.state == RequestState.SUCCEEDED, done.outcome
    return done.outcome or ""


async def test_remove_tdo_keeps_the_service_account_then_setup_restores_it(box: Sandbox) -> None:
    directory = box.components.directories["contoso.test"]
    outcome = await approve_and_wait(box, "remove-tdo contoso.test -- retire SQL MI trust", ["U0BOB", "U0CAROL"])
    assert "FIDO sign-in keeps working" in outcome
    state = await directory.read_kerberos_objects()
    assert state.trusted_domain is None and state.server is not None
    assert not (await box.components.module.get_server("contoso.test")).cloud_trust_display
    events = await box.components.entra.kerberos_domain_events("contoso.test")
    assert events[0].activity == "Update kerberos domain"  # Entra recorded the cloud side of the change

    outcome = await approve_and_wait(
        box,
        "setup contoso.test --top-level-names usgovcloudapi.net,windows.net -- US Gov SQL MI",
        ["U0BOB", "U0CAROL"],  # setup: two approvers by default
    )
    assert "cloud trust" in outcome
    state = await directory.read_kerberos_objects()
    assert state.trusted_domain is not None
    assert set(state.trusted_domain.top_level_names) == {"usgovcloudapi.net", "windows.net"}
    report = await box.components.module.get_server("contoso.test")
    assert report.cloud_trust_display and set(report.cloud_top_level_names) == {"usgovcloudapi.net", "windows.net"}


async def test_remove_all_leaves_nothing_in_ad_or_entra(box: Sandbox) -> None:
    outcome = await approve_and_wait(box, "remove-all fabrikam.test -- decommission", ["U0BOB", "U0CAROL"])
    assert "Removed all Kerberos settings" in outcome
    state = await box.components.directories["fabrikam.test"].read_kerberos_objects()
    assert state.server is None and state.trusted_domain is None and state.service_connection_point is None
    report = await box.components.module.get_server("fabrikam.test")
    assert not report.has_cloud and not report.has_on_prem
    events = await box.components.entra.kerberos_domain_events("fabrikam.test")
    assert events[0].activity == "Delete kerberos domain"
    await asyncio.sleep(0)
    _, replies = await box.command("status fabrikam.test")
    assert "Not set up" in str(replies)


async def test_refusals_reach_the_requester_not_the_approvers(box: Sandbox) -> None:
    posted = cards(box)
    _, replies = await box.command("remove-tdo fabrikam.test -- nothing there", user_id="U0ALICE")
    assert "no trusted domain object" in str(replies)
    ack, _ = await box.command("setup contoso.test --top-level-names bogus -- x", user_id="U0ALICE")
    assert "not a DNS suffix" in ack.body
    assert cards(box) == posted


async def test_requests_lists_and_the_requester_can_cancel(box: Sandbox) -> None:
    request, _, ts = await request_via_slack(box, "rotate contoso.test --force -- maybe later")
    _, replies = await box.command("requests", user_id="U0BOB")
    assert request.id in str(replies) and "Waiting for approval" in str(replies)
    _, replies = await box.command(f"cancel {request.id}", user_id="U0BOB")
    assert "Only the person who asked" in str(replies)
    _, replies = await box.command(f"cancel {request.id}", user_id="U0ALICE")
    assert "is cancelled" in str(replies)
    cancelled = await wait_for_state(box, request.id, {RequestState.CANCELLED})
    assert cancelled.decided_by == "U0ALICE"
    last_card = [c.body for c in box.slack.api_calls("chat.update") if c.body.get("ts") == ts][-1]
    assert "Cancelled by <@U0ALICE> at " in str(last_card)
    _, replies = await box.command("cancel nope", user_id="U0ALICE")
    assert "There is no request `nope`" in str(replies)
