"""/kerberos rotate through Slack: signed command, signed clicks, the worker, the card and its thread."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kerberos_sandbox.sandbox import Sandbox
from kerberos_sandbox.slack_requests import block_actions_payload, view_submission_payload

from bot.adapters.redis.client import connect
from bot.domain.approvals import ChangeRequest, RequestState
from handlers.views.cards import APPROVE_ACTION, DENY_ACTION
from handlers.views.modals import DENY_DIALOG

pytestmark = pytest.mark.samba


def blocks_of(call_body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = call_body.get("blocks", [])
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


async def request_via_slack(box: Sandbox, text: str, user: str = "U0ALICE") -> tuple[ChangeRequest, str, str]:
    ack, replies = await box.command(text, user_id=user)
    assert ack.status == 200, ack.body
    assert replies and "posted for approval" in json.dumps(replies), replies
    # the newest card: a thread line of an earlier request may come after it (posts are paced per channel)
    cards = [c.body for c in box.slack.channel_posts() if any(b["type"] == "actions" for b in blocks_of(c.body))]
    [actions] = [b for b in blocks_of(cards[-1]) if b["type"] == "actions"]
    value = actions["elements"][0]["value"]
    changes = box.components.services.changes
    assert changes is not None
    request = await changes.queries.get(changes.decisions.request_id_of(value) or "")
    assert request is not None and request.card
    return request, value, request.card


async def click(box: Sandbox, user: str, action_id: str, value: str, ts: str) -> int:
    payload = block_actions_payload(
        user_id=user, action_id=action_id, value=value, channel_id="C0PLATFORM", message_ts=ts
    )
    return (await box.interact(payload)).status


async def wait_for_state(box: Sandbox, request_id: str, states: set[RequestState]) -> ChangeRequest:
    changes = box.components.services.changes
    assert changes is not None
    for _ in range(300):
        request = await changes.queries.get(request_id)
        if request is not None and request.state in states:
            return request
        await asyncio.sleep(0.1)
    raise AssertionError(f"request {request_id} never reached {states}")


async def test_forced_rotation_approved_by_two_in_slack_runs_once(box: Sandbox) -> None:
    directory = box.components.directories["contoso.test"]
    before_state = await directory.read_kerberos_objects()
    before, before_tdo = before_state.server, before_state.trusted_domain
    assert before is not None and before.key is not None
    assert before_tdo is not None and before_tdo.keys_updated_on is not None  # contoso has the cloud trust
    _, status = await box.command("status contoso.test")
    assert "TrustKeysUpdatedOn" in json.dumps(status) and "trust_keys" not in json.dumps(status)
    await asyncio.sleep(1.1)  # replication metadata has one-second resolution
    request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- repair right after setup")
    assert request.approvals_required == 2
    # the source document's rotation: the service account and the trusted domain object
    assert request.plan[0] == "Set-AzureADKerberosServer -Domain contoso.test -SetupCloudTrust -RotateServerKey -Force"
    assert any("new keys on the trusted domain object" in step for step in request.plan)

    # refused clicks: the requester, and someone outside the approver group
    assert await click(box, "U0ALICE", APPROVE_ACTION, value, ts) == 200
    assert await click(box, "U0MALLORY", APPROVE_ACTION, value, ts) == 200
    # many clicks by the two approvers at once
    statuses = await asyncio.gather(*(click(box, u, APPROVE_ACTION, value, ts) for u in ["U0BOB", "U0CAROL"] * 5))
    assert set(statuses) == {200}

    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
    assert done.state == RequestState.SUCCEEDED, done.outcome
    assert {a.approver for a in done.approvals} == {"U0BOB", "U0CAROL"}

    after_state = await directory.read_kerberos_objects()
    after, after_tdo = after_state.server, after_state.trusted_domain
    assert after is not None and after.key is not None and after.key.version > before.key.version
    # proven by the TDO's replication metadata on the Samba DC, not by the call's answer
    assert after_tdo is not None and after_tdo.keys_updated_on is not None
    assert after_tdo.keys_updated_on > before_tdo.keys_updated_on
    assert after_tdo.top_level_names == before_tdo.top_level_names
    assert "trusted domain object has new keys too" in (done.outcome or "")
    for _ in range(50):  # the key follow-up posts last
        thread = [c.body["text"] for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
        if any("holds the new key" in t for t in thread):
            break
        await asyncio.sleep(0.1)
    outcome = [t for t in thread if "Rotated: KeyVersion" in t]
    assert len(outcome) == 1 and "several hours" in outcome[0]
    # refused clicks are answered to the clicker only (below) and audited; the thread stays clean
    assert not any("refused" in t or "own request" in t for t in thread)
    assert sum("approved (1 of 2)" in t for t in thread) == 1
    assert sum("approved (2 of 2): the change starts" in t for t in thread) == 1
    contoso_dc = f"ldaps://{box.domains[0].address}:636"
    assert any(f"holds the new key (KeyVersion {after.key.version}): {contoso_dc}" in t for t in thread)
    last_card = [c.body for c in box.slack.api_calls("chat.update") if c.body.get("ts") == ts][-1]
    assert "Done" in json.dumps(blocks_of(last_card))
    assert not [b for b in blocks_of(last_card) if b["type"] == "actions"]  # the buttons are gone
    ephemerals = [c.body["text"] for c in box.slack.api_calls("chat.postEphemeral")]
    assert any("someone else has to approve" in t for t in ephemerals)
    assert any("not in a group allowed to approve" in t for t in ephemerals)


async def test_deny_asks_for_a_reason_and_shows_it(box: Sandbox) -> None:
    request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- second rotation")
    opened = len(box.slack.api_calls("views.open"))
    assert await click(box, "U0BOB", DENY_ACTION, value, ts) == 200
    dialog = (await box.slack.wait_for_api("views.open", opened + 1))[-1].body
    view = json.loads(dialog["view"]) if isinstance(dialog["view"], str) else dialog["view"]
    submission = view_submission_payload(
        user_id="U0BOB",
        callback_id=DENY_DIALOG,
        private_metadata=view["private_metadata"],
        values={"reason": {"reason": {"type": "plain_text_input", "value": "change freeze until Monday"}}},
    )
    assert (await box.interact(submission)).status == 200
    denied = await wait_for_state(box, request.id, {RequestState.DENIED})
    assert denied.decided_by == "U0BOB" and denied.decision_reason == "change freeze until Monday"
    await box.slack.wait_for_api(
        "chat.update",
        where=lambda c: c.body.get("ts") == ts and "change freeze until Monday" in json.dumps(blocks_of(c.body)),
    )


def cards(box: Sandbox) -> int:
    """Request cards posted so far (a thread line of an earlier request may still be on its way)."""
    return sum(any(b["type"] == "header" for b in blocks_of(c.body)) for c in box.slack.channel_posts())


async def test_unforced_rotation_of_a_fresh_key_is_refused_in_slack(box: Sandbox) -> None:
    posted = cards(box)
    _ack, replies = await box.command("rotate contoso.test -- routine", user_id="U0ALICE")
    assert "needs `--force`" in json.dumps(replies)
    assert cards(box) == posted  # no card went to approvers


async def test_rotate_needs_a_reason(box: Sandbox) -> None:
    ack, _ = await box.command("rotate contoso.test --force", user_id="U0ALICE")
    assert "Say why" in ack.body


async def test_a_rotated_key_never_reaches_the_logs_or_redis(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from bot.adapters.kerberos_module.emulator import on_prem as emulator_ad
    from bot.observability.logs import JsonFormatter

    keys: list[bytes] = []
    original = emulator_ad._new_key

    def recording_new_key() -> bytes:
        keys.append(original())
        return keys[-1]

    monkeypatch.setattr(emulator_ad, "_new_key", recording_new_key)
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    capture = Capture(level=logging.DEBUG)
    capture.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(capture)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- key hygiene")
        for user in ("U0BOB", "U0CAROL"):
            await click(box, user, APPROVE_ACTION, value, ts)
        done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
        assert done.state == RequestState.SUCCEEDED
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
    assert keys, "the rotation set no key"
    secrets = [k.decode("utf-16-le").strip('"') for k in keys]
    log_text = "\n".join(lines)
    assert lines and all(s not in log_text for s in secrets)
    handler_lines = [json.loads(line) for line in lines if json.loads(line)["logger"].startswith("handlers")]
    assert handler_lines and all(e["request_id"] != "-" and e["slack_user"] != "-" for e in handler_lines)

    client = connect("redis://127.0.0.1:6379/0")
    stored = []
    async for key in client.scan_iter(match="{kerberos-bot-sandbox-*", count=1000):
        kind = str(await client.type(key))
        if kind == "hash":
            stored.append(repr(await client.hgetall(key)))
        elif kind == "stream":
            stored.append(repr(await client.xrange(key)))
        elif kind == "list":
            stored.append(repr(await client.lrange(key, 0, -1)))
        elif kind == "string":
            stored.append(repr(await client.get(key)))
    await client.aclose()
    dump = "\n".join(stored)
    assert request.id in dump  # we looked in the right place
    assert all(s not in dump for s in secrets)
