"""The approval store's contract, on real Redis and on the in-memory fake alike."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.adapters.redis_store import RedisApprovalStore, RedisVerifications
from bot.domain.approvals import Action, ApprovalStore, ChangeRequest, RequestState, Verdict
from bot.domain.verification import VerifiedIdentity
from tests.support.fake_approvals import FakeApprovalStore

REDIS_URL = "redis://127.0.0.1:6379/0"


async def _drop_prefix(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}:*", count=500):
        await client.delete(key)


@pytest.fixture(params=["redis", "fake"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ApprovalStore]:
    if request.param == "fake":
        yield FakeApprovalStore()
        return
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"  # own key prefix, dropped afterwards
    redis_store = RedisApprovalStore.from_url(REDIS_URL, prefix)
    yield redis_store
    client = aioredis.Redis.from_url(REDIS_URL)
    await _drop_prefix(client, prefix)
    await client.aclose()
    await redis_store.close()


def new_request(required: int = 1, ttl: timedelta = timedelta(hours=1), requester: str = "U0ALICE") -> ChangeRequest:
    now = datetime.now(UTC)
    return ChangeRequest(
        id=uuid.uuid4().hex[:12],
        action=Action.ROTATE,
        domain="contoso.test",
        requester=requester,
        reason="quarterly rotation",
        plan=("LDAP: replace unicodePwd of CN=krbtgt_AzureAD,...",),
        created_at=now,
        expires_at=now + ttl,
        approvals_required=required,
    )


async def test_one_approval_approves_and_queues_once(store: ApprovalStore) -> None:
    request = new_request()
    await store.create(request)
    result = await store.approve(request.id, "U0BOB", datetime.now(UTC))
    assert result.verdict == Verdict.APPROVED and result.request is not None
    assert result.request.state == RequestState.APPROVED
    assert [a.approver for a in result.request.approvals] == ["U0BOB"]
    claimed = await store.next_approved("worker-1")
    assert claimed is not None and claimed.id == request.id and claimed.state == RequestState.EXECUTING
    assert await store.next_approved("worker-2") is None


async def test_two_distinct_approvers_needed(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request)
    now = datetime.now(UTC)
    assert (await store.approve(request.id, "U0BOB", now)).verdict == Verdict.RECORDED
    assert (await store.approve(request.id, "U0BOB", now)).verdict == Verdict.DUPLICATE
    assert (await store.approve(request.id, "U0CAROL", now)).verdict == Verdict.APPROVED


async def test_requester_cannot_approve_and_it_is_audited(store: ApprovalStore) -> None:
    request = new_request()
    await store.create(request)
    result = await store.approve(request.id, "U0ALICE", datetime.now(UTC))
    assert result.verdict == Verdict.SELF_APPROVAL
    assert result.request is not None and result.request.state == RequestState.PENDING
    events = [e.event for e in await store.audit(request.id)]
    assert events == ["requested", "refused"]


async def test_expired_request_cannot_be_approved(store: ApprovalStore) -> None:
    request = new_request(ttl=timedelta(seconds=1))
    await store.create(request)
    later = datetime.now(UTC) + timedelta(seconds=5)
    result = await store.approve(request.id, "U0BOB", later)
    assert result.verdict == Verdict.EXPIRED
    assert result.request is not None and result.request.state == RequestState.EXPIRED
    assert await store.next_approved("worker") is None


async def test_expiry_sweep(store: ApprovalStore) -> None:
    request = new_request(ttl=timedelta(seconds=1))
    await store.create(request)
    assert await store.expire_due(datetime.now(UTC) + timedelta(seconds=5)) == [request.id]
    assert (await store.get(request.id)).state == RequestState.EXPIRED  # type: ignore[union-attr]


async def test_cancel_only_by_the_requester_then_nothing_else(store: ApprovalStore) -> None:
    request = new_request()
    await store.create(request)
    now = datetime.now(UTC)
    assert (await store.cancel(request.id, "U0BOB", now)).verdict == Verdict.NOT_REQUESTER
    assert (await store.cancel(request.id, "U0ALICE", now)).verdict == Verdict.CANCELLED
    assert (await store.approve(request.id, "U0BOB", now)).verdict == Verdict.NOT_PENDING


async def test_deny_records_who_and_why(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request)
    result = await store.deny(request.id, "U0CAROL", "change freeze", datetime.now(UTC))
    assert result.verdict == Verdict.DENIED and result.request is not None
    assert result.request.decided_by == "U0CAROL" and result.request.decision_reason == "change freeze"
    assert (await store.approve(request.id, "U0BOB", datetime.now(UTC))).verdict == Verdict.NOT_PENDING


async def test_unknown_request(store: ApprovalStore) -> None:
    assert (await store.approve("nope", "U0BOB", datetime.now(UTC))).verdict == Verdict.NOT_FOUND


async def test_finish_records_the_outcome_once(store: ApprovalStore) -> None:
    request = new_request()
    await store.create(request)
    await store.approve(request.id, "U0BOB", datetime.now(UTC))
    await store.next_approved("worker")
    await store.finish(request.id, True, "KeyVersion 3948 = CloudKeyVersion 3948", datetime.now(UTC))
    await store.finish(request.id, False, "late duplicate", datetime.now(UTC))
    done = await store.get(request.id)
    assert done is not None and done.state == RequestState.SUCCEEDED and done.outcome and "3948" in done.outcome


@pytest.mark.parametrize("required", [1, 2])
async def test_twenty_concurrent_clicks_execute_once(store: ApprovalStore, required: int) -> None:
    for _ in range(25):  # trials
        request = new_request(required=required)
        await store.create(request)
        now = datetime.now(UTC)
        approvers = [f"U0APPROVER{i}" for i in range(20)]
        results = await asyncio.gather(*(store.approve(request.id, a, now) for a in approvers))
        verdicts = Counter(r.verdict for r in results)
        assert verdicts[Verdict.APPROVED] == 1
        assert verdicts[Verdict.RECORDED] == required - 1
        assert verdicts[Verdict.NOT_PENDING] == 20 - required
        claims = [await store.next_approved(f"w{i}") for i in range(3)]
        assert [c.id for c in claims if c is not None] == [request.id]


async def test_same_person_clicking_twenty_times_counts_once(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request)
    now = datetime.now(UTC)
    results = await asyncio.gather(*(store.approve(request.id, "U0BOB", now) for _ in range(20)))
    verdicts = Counter(r.verdict for r in results)
    assert verdicts == {Verdict.RECORDED: 1, Verdict.DUPLICATE: 19}


async def test_redis_restart_between_request_and_approval_loses_nothing(tmp_path: object) -> None:
    from pathlib import Path

    from bot.sandbox.redis_server import PrivateRedis

    server = PrivateRedis(Path(str(tmp_path)))
    await server.start()
    try:
        first = RedisApprovalStore.from_url(server.url, "kbot")
        request = new_request(required=2)
        await first.create(request)
        await first.approve(request.id, "U0BOB", datetime.now(UTC))
        await first.close()

        await server.restart()

        second = RedisApprovalStore.from_url(server.url, "kbot")
        kept = await second.get(request.id)
        assert kept is not None and kept.state == RequestState.PENDING
        assert [a.approver for a in kept.approvals] == ["U0BOB"]
        assert (await second.approve(request.id, "U0CAROL", datetime.now(UTC))).verdict == Verdict.APPROVED
        claimed = await second.next_approved("worker")
        assert claimed is not None and claimed.id == request.id
        assert [e.event for e in await second.audit(request.id)] == ["requested", "approved", "approved", "claimed"]
        await second.close()
    finally:
        await server.stop()


async def test_a_verified_approval_keeps_the_entra_identity_in_the_record_and_the_audit(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request)
    signed_in = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    identity = VerifiedIdentity("0b7c-oid", "bob@contoso.test", signed_in, mfa=True)
    result = await store.approve(request.id, "U0BOB", datetime.now(UTC), identity)
    assert result.verdict == Verdict.RECORDED
    await store.approve(request.id, "U0CAROL", datetime.now(UTC))  # an unverified one beside it
    stored = await store.get(request.id)
    assert stored is not None
    by_user = {a.approver: a.identity for a in stored.approvals}
    assert by_user == {"U0BOB": identity, "U0CAROL": None}
    approved = [e for e in await store.audit(request.id) if e.event == "approved"]
    assert approved[0].detail == "verified as bob@contoso.test, MFA"
    assert approved[0].extra == {
        "entra_oid": "0b7c-oid",
        "entra_upn": "bob@contoso.test",
        "entra_signed_in_at": signed_in.isoformat(),
    }
    assert approved[1].extra == {}


async def test_a_verification_lives_only_for_its_window_and_holds_no_token() -> None:
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    verifications = RedisVerifications(client, prefix)
    identity = VerifiedIdentity("0b7c-oid", "bob@contoso.test", datetime.now(UTC), mfa=True)
    try:
        await verifications.remember("U0BOB", identity, timedelta(milliseconds=300))
        assert await verifications.recall("U0BOB") == identity
        stored = await client.get(f"{prefix}:verified:U0BOB")
        assert set(json.loads(stored)) == {"at", "oid", "upn", "signed_in_at", "mfa"}
        assert 0 < await client.pttl(f"{prefix}:verified:U0BOB") <= 300
        await asyncio.sleep(0.4)
        assert await verifications.recall("U0BOB") is None
    finally:
        await _drop_prefix(client, prefix)
        await client.aclose()
