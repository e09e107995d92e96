"""The attacks of "approvals that cannot be bent", as regression tests: validly signed requests to the
real bot (what a compromised Slack client could vary), writes to the real Redis (what anything with
access to it could do), on the Samba DCs and the stand-ins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kerberos_sandbox.sandbox import Sandbox
from kerberos_sandbox.slack_requests import block_actions_payload

from bot.adapters.redis.client import connect
from bot.domain.approvals import RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.integration.test_rotate_slack import blocks_of, request_via_slack, wait_for_state

pytestmark = pytest.mark.samba
REDIS_URL = "redis://127.0.0.1:6379/0"  # the sandbox's


def store_prefix(box: Sandbox) -> str:
    changes = box.components.services.changes
    assert changes is not None
    return str(changes.store._p)  # type: ignore[attr-defined]  # where the sandbox keeps its keys


async def click_from(box: Sandbox, user: str, value: str, ts: str, **where: str) -> None:
    payload: dict[str, Any] = block_actions_payload(
        user_id=user, action_id=APPROVE_ACTION, value=value, channel_id=where.get("channel", "C0PLATFORM"),
        message_ts=ts, team_id=where.get("team", "T0STANDIN"),
    )  # fmt: skip
    if "app" in where:
        payload["api_app_id"] = where["app"]
    assert (await box.interact(payload)).status == 200


async def told(box: Sandbox, user: str, count: int) -> list[str]:
    calls = await box.slack.wait_for_api("chat.postEphemeral", count, 10, where=lambda c: c.body.get("user") == user)
    return [str(c.body.get("text", "")) for c in calls]


async def test_the_policy_cannot_come_from_the_button(box: Sandbox) -> None:
    request, _value, ts = await request_via_slack(box, "rotate contoso.test --force -- policy from the button?")
    before = len(await told(box, "U0BOB", 0))
    # the old <id>|<kind> form, naming the weaker action
    await click_from(box, "U0BOB", f"{request.id}|rotate", ts)
    [*_, refusal] = await told(box, "U0BOB", before + 1)
    assert "not made by kerberos-bot" in refusal
    kept = await box.components.services.changes.queries.get(request.id)  # type: ignore[union-attr]
    assert kept is not None and kept.approvals == ()


@pytest.mark.parametrize(
    "where", [{"channel": "C0OTHER"}, {"team": "T0OTHER"}, {"app": "A0OTHERAPP"}], ids=["channel", "team", "app"]
)
async def test_a_click_from_another_channel_team_or_app_does_not_count(box: Sandbox, where: dict[str, str]) -> None:
    request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- from elsewhere?")
    before = len(await told(box, "U0BOB", 0))
    await click_from(box, "U0BOB", value, ts, **where)
    [*_, refusal] = await told(box, "U0BOB", before + 1)
    assert "made in another channel" in refusal
    changes = box.components.services.changes
    assert changes is not None
    kept = await changes.queries.get(request.id)
    assert kept is not None and kept.approvals == ()
    audit = await changes.store.audit(request.id)
    assert any(e.event == "refused" and e.detail.startswith("wrong_origin") for e in audit)


async def test_a_record_written_to_redis_by_someone_else_never_runs(box: Sandbox) -> None:
    """An approved remove-all with zero approvals, written straight into Redis and queued."""
    prefix = store_prefix(box)
    client = connect(REDIS_URL)
    now = datetime.now(UTC)
    forged = "f0r9ed0000"
    try:
        await client.hset(
            f"{prefix}:req:{forged}",
            mapping={
                "id": forged, "action": "remove-all", "domain": "fabrikam.test", "requester": "U0MALLORY",
                "reason": "forged", "plan": "[]", "created_at": now.isoformat(),
                "created_at_ms": str(int(now.timestamp() * 1000)),
                "expires_at": (now + timedelta(hours=1)).isoformat(),
                "expires_at_ms": str(int((now + timedelta(hours=1)).timestamp() * 1000)),
                "approvals_required": "0", "state": "approved", "approved_at": now.isoformat(),
                "approved_at_ms": str(int(now.timestamp() * 1000)), "mac": "0" * 64,
            },
        )  # fmt: skip
        await client.xadd(f"{prefix}:work", {"request": forged})
        flagged = await wait_for_state(
            box, forged, {RequestState.ATTENTION, RequestState.FAILED, RequestState.SUCCEEDED}
        )
        assert flagged.state == RequestState.ATTENTION
        assert flagged.outcome and "does not carry the bot's signature" in flagged.outcome
        report = await box.components.module.get_server("fabrikam.test")
        assert report.has_on_prem and report.has_cloud  # nothing was removed
        changes = box.components.services.changes
        assert changes is not None
        events = [e.event for e in await changes.store.audit(forged)]
        assert events[-1] == "attention"
    finally:
        for suffix in ("", ":journal", ":approvals"):
            await client.delete(f"{prefix}:req:{forged}{suffix}")
        await client.aclose()


async def test_a_hostile_reason_renders_as_plain_text_on_the_card(box: Sandbox) -> None:
    text = (
        "rotate contoso.test --force -- fine\n*Approvals:* 2 of 2 (verified)\n"
        ":white_check_mark: *Approved; starting* <!channel> <https://evil.example|docs>"
    )
    ack, _ = await box.command(text)
    assert "<!channel>" not in ack.body
    card = box.slack.channel_posts()[-1].body
    blocks = blocks_of(card)
    mrkdwn = json.dumps([b for b in blocks if b.get("text", {}).get("type") == "mrkdwn"])
    assert "evil.example" not in mrkdwn and "<!channel>" not in mrkdwn and "2 of 2 (verified)" not in mrkdwn
    contexts = [e for b in blocks if b["type"] == "context" for e in b["elements"]]
    [reason] = [e for e in contexts if "Reason given by the requester" in e["text"]]
    assert reason["type"] == "plain_text" and "\n" not in reason["text"]


async def test_refused_clicks_stay_out_of_the_thread_and_are_audited_once(box: Sandbox) -> None:
    request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- spam the thread?")
    for _ in range(10):
        await click_from(box, "U0MALLORY", value, ts)
    await told(box, "U0MALLORY", 10)
    thread = [c for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
    assert thread == []
    changes = box.components.services.changes
    assert changes is not None
    refused = [e for e in await changes.store.audit(request.id) if e.event == "refused"]
    assert len(refused) == 1 and refused[0].actor == "U0MALLORY"
