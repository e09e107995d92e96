"""Verified approvals with the device code flow (method = "device_code", the Socket Mode alternative),
on real parts: signed clicks, the ephemeral sign-in prompt, msal's device-code flow against the Entra
stand-in, Graph's group check, Redis, and the Samba DC. One sign-in per approval here too."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox

from bot.domain.approvals import ChangeRequest, RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.integration.test_rotate_slack import blocks_of, click, request_via_slack, wait_for_state
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(
        sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox")), verification_method="device_code"
    ) as running:
        yield running


def ephemerals(box: Sandbox, user: str) -> list[str]:
    return [str(c.body["text"]) for c in box.slack.api_calls("chat.postEphemeral") if c.body.get("user") == user]


async def next_ephemeral(box: Sandbox, user: str, seen: int, pattern: str) -> str:
    for _ in range(150):
        for text in ephemerals(box, user)[seen:]:
            if re.search(pattern, text):
                return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message to {user} matching {pattern!r}: {ephemerals(box, user)[seen:]}")


async def approve_and_get_code(box: Sandbox, user: str, value: str, ts: str) -> str:
    seen = len(ephemerals(box, user))
    assert await click(box, user, APPROVE_ACTION, value, ts) == 200
    text = await next_ephemeral(box, user, seen, r"with the code \w+")
    match = re.search(r"with the code (\w+)", text)
    assert match is not None
    return match.group(1)


async def wait_for_approvals(box: Sandbox, request_id: str, count: int) -> ChangeRequest:
    changes = box.components.services.changes
    assert changes is not None
    for _ in range(150):
        request = await changes.queries.get(request_id)
        if request is not None and len(request.approvals) >= count:
            return request
        await asyncio.sleep(0.1)
    raise AssertionError(f"request {request_id} never had {count} approvals")


async def test_verified_approvals_gate_a_trust_removal(box: Sandbox) -> None:
    people = box.entra.people
    request, value, ts = await request_via_slack(box, "remove-tdo contoso.test -- decommissioning the MI")
    assert request.approvals_required == 2

    # Bob clicks: nothing is counted yet; only he sees where to sign in and as whom
    code = await approve_and_get_code(box, "U0BOB", value, ts)
    prompt = [c.body for c in box.slack.api_calls("chat.postEphemeral") if c.body.get("user") == "U0BOB"][-1]
    assert "bob@contoso.test" in json.dumps(blocks_of(prompt)) and "/devicelogin" in json.dumps(blocks_of(prompt))
    pending = await wait_for_state(box, request.id, {RequestState.PENDING})
    assert pending.approvals == ()
    # a second click while the sign-in is open shows the same code
    assert await approve_and_get_code(box, "U0BOB", value, ts) == code
    people.sign_in(code, "bob@contoso.test", mfa=True)
    bob_approved = await wait_for_approvals(box, request.id, 1)
    (bob,) = bob_approved.approvals
    assert bob.identity is not None and bob.identity.upn == "bob@contoso.test" and bob.identity.mfa
    assert bob.identity.object_id == people.user("bob@contoso.test").object_id  # type: ignore[union-attr]

    # Dave is in the Slack approver group but not in the Entra one: refused
    seen = len(ephemerals(box, "U0DAVE"))
    people.sign_in(await approve_and_get_code(box, "U0DAVE", value, ts), "dave@contoso.test")
    assert "not a member of the Entra approver group" in await next_ephemeral(box, "U0DAVE", seen, "refused")

    # Carol without MFA: refused; then as someone else: refused; then properly: it runs
    seen = len(ephemerals(box, "U0CAROL"))
    people.sign_in(await approve_and_get_code(box, "U0CAROL", value, ts), "carol@contoso.test", mfa=False)
    assert "multi-factor" in await next_ephemeral(box, "U0CAROL", seen, "refused")
    seen = len(ephemerals(box, "U0CAROL"))
    people.sign_in(await approve_and_get_code(box, "U0CAROL", value, ts), "bob@contoso.test")
    assert "belongs to carol@contoso.test" in await next_ephemeral(box, "U0CAROL", seen, "refused")
    assert len((await wait_for_state(box, request.id, {RequestState.PENDING})).approvals) == 1
    people.sign_in(await approve_and_get_code(box, "U0CAROL", value, ts), "carol@contoso.test")

    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
    assert done.state == RequestState.SUCCEEDED, done.outcome
    assert {(a.approver, a.identity.upn if a.identity else None) for a in done.approvals} == {
        ("U0BOB", "bob@contoso.test"),
        ("U0CAROL", "carol@contoso.test"),
    }
    assert (await box.components.directories["contoso.test"].read_kerberos_objects()).trusted_domain is None

    changes = box.components.services.changes
    assert changes is not None
    audit = await changes.store.audit(request.id)
    approved = [e for e in audit if e.event == "approved"]
    assert [e.extra["entra_upn"] for e in approved] == ["bob@contoso.test", "carol@contoso.test"]
    assert all(e.extra["entra_oid"] and e.extra["entra_signed_in_at"] for e in approved)
    refused = [e.detail for e in audit if e.event == "refused"]
    # the three sign-ins that did not verify, beside the clicks that were sent to sign in first (each
    # audited once per approver and verdict)
    assert len([d for d in refused if d.startswith("verification failed")]) == 3
    others = set(refused) - {d for d in refused if d.startswith("verification failed")}
    assert others <= {"verify_first", "duplicate"}

    cards = [c.body for c in box.slack.api_calls("chat.update") if c.body.get("ts") == ts]
    assert "verified as bob@contoso.test, MFA" in json.dumps(blocks_of(cards[-1]))
    thread = [c.body["text"] for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
    assert any("approved (verified as carol@contoso.test, MFA) (2 of 2)" in t for t in thread)
    assert not any("did not verify them" in t for t in thread)  # refusals go to the approver only
    told = [c.body.get("text", "") for c in box.slack.api_calls("chat.postEphemeral")]
    assert sum("was refused" in t for t in told) >= 3

    _ack, replies = await box.command("requests", user_id="U0ALICE")
    assert "verified as bob@contoso.test, MFA" in json.dumps(replies)


async def test_a_sign_in_approves_one_request_and_an_abandoned_one_leaves_it_open(box: Sandbox) -> None:
    first, first_value, first_ts = await request_via_slack(
        box, "rotate contoso.test --force -- after the trust change", user="U0DAVE"
    )
    second, second_value, second_ts = await request_via_slack(
        box, "rotate contoso.test --force -- another one", user="U0DAVE"
    )
    # Bob signs in for the first request; his click on the second one right after needs its own sign-in
    first_code = await approve_and_get_code(box, "U0BOB", first_value, first_ts)
    second_code = await approve_and_get_code(box, "U0BOB", second_value, second_ts)
    assert first_code != second_code
    box.entra.people.sign_in(first_code, "bob@contoso.test")
    counted = await wait_for_approvals(box, first.id, 1)
    assert counted.approvals[0].identity is not None
    assert (await wait_for_state(box, second.id, {RequestState.PENDING})).approvals == ()
    # he never finishes the second one: it stays pending, with its buttons
    seen = len(ephemerals(box, "U0BOB"))
    box.entra.people.decline(second_code)
    assert "stays open" in await next_ephemeral(box, "U0BOB", seen, "not counted")
    assert (await wait_for_state(box, second.id, {RequestState.PENDING})).approvals == ()
