"""The approval store's contract, on real Redis and on the in-memory fake alike: decisions, claims with
their lease and domain lock, recovery of abandoned claims, retention."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ChangeRequest, Claim, FinishResult, RequestState, Verdict
from bot.domain.history import Event, HistoryEntry
from bot.domain.ports import ApprovalStore
from bot.domain.verification import VerifiedIdentity
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.redis_keys import cluster_prefix

REDIS_URL = "redis://127.0.0.1:6379/0"


async def _drop_prefix(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}:*", count=500):
        await client.delete(key)


@pytest.fixture(params=["redis", "fake", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ApprovalStore]:
    if request.param == "fake":
        yield FakeApprovalStore()
        return
    if request.param == "cluster":  # three primaries, three replicas: every script within one slot
        cluster = request.getfixturevalue("redis_cluster")
        on_cluster = RedisApprovalStore(connect(cluster.url), cluster_prefix(), reclaim_after=timedelta(0))
        yield on_cluster
        await on_cluster.close()
        return
    prefix = f"kbot-test-{uuid.uuid4().hex[:8]}"  # own key prefix, dropped afterwards
    # reclaim_after=0: an entry left pending (its domain was busy) is offered again at once
    redis_store = RedisApprovalStore(connect(REDIS_URL), prefix, reclaim_after=timedelta(0))
    yield redis_store
    client = connect(REDIS_URL)
    await _drop_prefix(client, prefix)
    await client.aclose()
    await redis_store.close()


LEASE = timedelta(seconds=30)


async def claim(store: ApprovalStore, consumer: str = "worker", at: datetime | None = None) -> Claim | None:
    return await store.claim_next(consumer, LEASE, at or datetime.now(UTC))


def new_request(
    required: int = 1,
    ttl: timedelta = timedelta(hours=1),
    requester: str = "U0ALICE",
    domain: str = "contoso.test",
) -> ChangeRequest:
    now = datetime.now(UTC)
    return ChangeRequest(
        id=uuid.uuid4().hex[:12],
        action=Action.ROTATE,
        domain=domain,
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
    claimed = await claim(store, "worker-1")
    assert claimed is not None and claimed.request.id == request.id
    assert claimed.request.state == RequestState.EXECUTING and claimed.request.claimed_by == "worker-1"
    assert await claim(store, "worker-2") is None


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
    assert await claim(store) is None


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
    claimed = await claim(store)
    assert claimed is not None
    now = datetime.now(UTC)
    assert await store.finish(claimed, RequestState.SUCCEEDED, "KeyVersion 3948 = CloudKeyVersion 3948", now) == (
        FinishResult.FINISHED
    )
    assert await store.finish(claimed, RequestState.FAILED, "late duplicate", now) == FinishResult.NOT_OURS
    done = await store.get(request.id)
    assert done is not None and done.state == RequestState.SUCCEEDED and done.outcome and "3948" in done.outcome
    assert await store.lock_holder("contoso.test") is None


async def with_its_operator(store: ApprovalStore) -> ChangeRequest:
    """A request filed, approved, claimed and handed to an operator (U0OPS), as stored then."""
    request = new_request()
    await store.create(request, entry=entry(Event.FILED, "U0ALICE"))
    await store.approve(request.id, "U0BOB", datetime.now(UTC), entry=entry(Event.APPROVED, "U0BOB"))
    claimed = await claim(store)
    assert claimed is not None
    handed = entry(Event.HANDED_OVER, "U0OPS", '{"upn":"ops@contoso.test"}')
    finished = await store.finish(claimed, RequestState.WITH_OPERATOR, "", datetime.now(UTC), entry=handed)
    assert finished == FinishResult.FINISHED
    stored = await store.get(request.id)
    assert stored is not None
    return stored


async def test_a_change_handed_to_an_operator_is_concluded_once_with_its_entries(store: ApprovalStore) -> None:
    request = await with_its_operator(store)
    now = datetime.now(UTC)
    assert [r.id for r in await store.with_operator()] == [request.id]
    assert await store.executing() == []
    assert await store.lock_holder("contoso.test") is None  # the engine keeps the domain's other changes back
    verified = entry(Event.SUCCEEDED, "", "verified")
    assert await store.conclude(request.id, RequestState.SUCCEEDED, "verified", now, entry=verified)
    assert not await store.conclude(request.id, RequestState.ATTENTION, "a second look", now, entry=verified)
    done = await store.get(request.id)
    assert done is not None and done.state == RequestState.SUCCEEDED and done.outcome == "verified"
    assert [e.event for e in done.history][-2:] == [Event.HANDED_OVER, Event.SUCCEEDED]
    assert await store.with_operator() == []
    assert [e.event for e in await store.audit(request.id)][-1:] == ["succeeded"]
    assert not await store.conclude("no-such-request", RequestState.FAILED, "x", now)


async def test_a_change_with_its_operator_is_handed_again_only_as_its_taker_saw_it(store: ApprovalStore) -> None:
    seen = await with_its_operator(store)
    request, now = seen, datetime.now(UTC)
    again = entry(Event.HANDED_OVER, "U0DAVE", '{"upn":"dave@contoso.test"}')
    assert await store.hand_over_again(request.id, len(seen.history), now, again)
    # a second taker who saw the request before the first took it: refused, nothing appended
    assert not await store.hand_over_again(request.id, len(seen.history), now, entry(Event.HANDED_OVER, "U0CAROL"))
    taken = await store.get(request.id)
    assert taken is not None and taken.state == RequestState.WITH_OPERATOR
    assert [(e.event, e.actor) for e in taken.history][-2:] == [
        (Event.HANDED_OVER, "U0OPS"),
        (Event.HANDED_OVER, "U0DAVE"),
    ]
    assert [(e.event, e.actor) for e in await store.audit(request.id)][-1:] == [("taken_over", "U0DAVE")]
    assert [r.id for r in await store.with_operator()] == [request.id]
    # once concluded, nobody takes it over
    assert await store.conclude(request.id, RequestState.FAILED, "nothing", now, entry=entry(Event.FAILED))
    done = await store.get(request.id)
    assert done is not None
    assert not await store.hand_over_again(request.id, len(done.history), now, entry(Event.HANDED_OVER, "U0CAROL"))
    assert not await store.hand_over_again("no-such-request", 0, now, again)


def entry(event: Event, actor: str = "", detail: str = "") -> HistoryEntry:
    """A history entry as the engine gives it (signed there; the store keeps it as given)."""
    return HistoryEntry(event, actor, datetime.now(UTC), detail, mac=f"v2:{event.value}-{actor}")


async def test_each_transition_appends_its_entry_and_a_refused_one_appends_nothing(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request, entry=entry(Event.FILED, "U0ALICE"))
    now = datetime.now(UTC)
    await store.approve(request.id, "U0BOB", now, entry=entry(Event.APPROVED, "U0BOB"))
    await store.approve(request.id, "U0BOB", now, entry=entry(Event.APPROVED, "U0BOB"))  # a duplicate: refused
    await store.approve(request.id, "U0ALICE", now, entry=entry(Event.APPROVED, "U0ALICE"))  # the requester
    await store.approve(request.id, "U0CAROL", now, entry=entry(Event.APPROVED, "U0CAROL"))
    claimed = await claim(store, "w1")
    assert claimed is not None
    await store.record_step(request.id, "claimed by w1", now, entry=entry(Event.STEP, detail="claimed by w1"))
    await store.finish(claimed, RequestState.SUCCEEDED, "done", now, entry=entry(Event.SUCCEEDED, detail="done"))
    assert await store.finish(claimed, RequestState.FAILED, "again", now, entry=entry(Event.FAILED)) == (
        FinishResult.NOT_OURS
    )
    stored = await store.get(request.id)
    assert stored is not None
    assert [(e.event, e.actor, e.mac) for e in stored.history] == [
        (Event.FILED, "U0ALICE", "v2:filed-U0ALICE"),
        (Event.APPROVED, "U0BOB", "v2:approved-U0BOB"),
        (Event.APPROVED, "U0CAROL", "v2:approved-U0CAROL"),
        (Event.STEP, "", "v2:step-"),
        (Event.SUCCEEDED, "", "v2:succeeded-"),
    ]
    assert [line.split(" ", 1)[1] for line in stored.journal] == ["claimed by w1"]  # the history's steps
    denied = new_request()
    await store.create(denied, entry=entry(Event.FILED, "U0ALICE"))
    await store.deny(denied.id, "U0BOB", "no", now, entry=entry(Event.DENIED, "U0BOB", "no"))
    await store.cancel(denied.id, "U0ALICE", now, entry=entry(Event.CANCELLED, "U0ALICE"))  # not pending: refused
    assert [e.event for e in (await store.get(denied.id)).history] == [Event.FILED, Event.DENIED]  # type: ignore[union-attr]


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
        claims = [await claim(store, f"w{i}") for i in range(3)]
        assert [c.request.id for c in claims if c is not None] == [request.id]
        [won] = [c for c in claims if c is not None]
        await store.finish(won, RequestState.SUCCEEDED, "done", datetime.now(UTC))


async def test_same_person_clicking_twenty_times_counts_once(store: ApprovalStore) -> None:
    request = new_request(required=2)
    await store.create(request)
    now = datetime.now(UTC)
    results = await asyncio.gather(*(store.approve(request.id, "U0BOB", now) for _ in range(20)))
    verdicts = Counter(r.verdict for r in results)
    assert verdicts == {Verdict.RECORDED: 1, Verdict.DUPLICATE: 19}


async def test_redis_restart_between_request_and_approval_loses_nothing(tmp_path: object) -> None:
    from pathlib import Path

    from kerberos_sandbox.redis_server import PrivateRedis

    server = PrivateRedis(Path(str(tmp_path)))
    await server.start()
    try:
        first = RedisApprovalStore(connect(server.url), "kbot")
        request = new_request(required=2)
        await first.create(request)
        await first.approve(request.id, "U0BOB", datetime.now(UTC))
        await first.close()

        await server.restart()

        second = RedisApprovalStore(connect(server.url), "kbot")
        kept = await second.get(request.id)
        assert kept is not None and kept.state == RequestState.PENDING
        assert [a.approver for a in kept.approvals] == ["U0BOB"]
        assert (await second.approve(request.id, "U0CAROL", datetime.now(UTC))).verdict == Verdict.APPROVED
        claimed = await claim(second)
        assert claimed is not None and claimed.request.id == request.id
        assert [e.event for e in await second.audit(request.id)] == ["requested", "approved", "approved", "claimed"]
        await second.close()
    finally:
        await server.stop()


async def test_the_requester_is_refused_by_entra_object_id_whatever_name_they_sign_in_with(
    store: ApprovalStore,
) -> None:
    request = replace(new_request(), requester_upn="alice@contoso.test", requester_oid="oid-alice")
    await store.create(request)
    second_account = VerifiedIdentity("OID-ALICE", "a.smith@contoso.test", datetime.now(UTC), mfa=True)
    result = await store.approve(request.id, "U0ALICE2", datetime.now(UTC), second_account)
    assert result.verdict == Verdict.SELF_APPROVAL
    assert (await store.get(request.id)).requester_oid == "oid-alice"  # type: ignore[union-attr]


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


# -- claims: the lease and the domain lock ----------------------------------------------------------
async def approved(store: ApprovalStore, domain: str = "contoso.test", ttl: timedelta = timedelta(hours=1)) -> str:
    request = new_request(domain=domain, ttl=ttl)
    await store.create(request)
    assert (await store.approve(request.id, "U0BOB", datetime.now(UTC))).verdict == Verdict.APPROVED
    return request.id


async def test_a_claim_holds_its_domain_until_it_finishes(store: ApprovalStore) -> None:
    first, second, other_domain = await approved(store), await approved(store), await approved(store, "fabrikam.test")
    one = await claim(store, "w1")
    assert one is not None and one.request.id == first
    assert await store.lock_holder("contoso.test") == first
    # the second request on contoso waits (stays approved); fabrikam's runs beside it
    two = await claim(store, "w2")
    assert two is not None and two.request.id == other_domain
    assert await claim(store, "w2") is None
    assert (await store.get(second)).state == RequestState.APPROVED  # type: ignore[union-attr]
    await store.finish(one, RequestState.SUCCEEDED, "done", datetime.now(UTC))
    three = await claim(store, "w3")
    assert three is not None and three.request.id == second


# a lease is measured by the store's own clock (Redis's TIME), never by a caller's: these cases wait for real
SHORT = timedelta(milliseconds=400)


async def lapse() -> None:
    await asyncio.sleep(SHORT.total_seconds() * 1.5)


async def test_a_live_lease_is_not_flagged_and_a_lapsed_one_is_flagged_once(store: ApprovalStore) -> None:
    request_id = await approved(store)
    claimed = await store.claim_next("worker", SHORT, datetime.now(UTC))
    assert claimed is not None
    far_future = datetime.now(UTC) + timedelta(days=1)  # a caller's clock says nothing about the lease
    assert not await store.flag_if_abandoned(request_id, "dead?", far_future)
    await asyncio.sleep(SHORT.total_seconds() * 0.6)
    renewed = await store.renew(claimed, SHORT, datetime.now(UTC))
    assert renewed is not None and renewed.lease_until > claimed.lease_until
    await asyncio.sleep(SHORT.total_seconds() * 0.6)
    assert not await store.flag_if_abandoned(request_id, "dead?", datetime.now(UTC))  # renewed: still alive
    await lapse()
    assert await store.flag_if_abandoned(request_id, "Needs attention: the worker died.", datetime.now(UTC))
    assert not await store.flag_if_abandoned(request_id, "again", datetime.now(UTC))
    flagged = await store.get(request_id)
    assert flagged is not None and flagged.state == RequestState.ATTENTION and "worker died" in (flagged.outcome or "")
    assert await store.lock_holder("contoso.test") is None  # the next change may run
    assert await store.executing() == []
    assert [e.event for e in await store.audit(request_id)][-1] == "attention"


async def test_a_claim_holds_while_its_lease_runs_and_not_once_it_lapsed_or_was_flagged(store: ApprovalStore) -> None:
    request_id = await approved(store)
    claimed = await store.claim_next("worker", SHORT, datetime.now(UTC))
    assert claimed is not None
    now = datetime.now(UTC)
    assert await store.holds(claimed, SHORT / 4, now)
    assert not await store.holds(claimed, SHORT * 2, now)  # less of the lease is left than the margin
    forged = Claim(claimed.request, "forged-token", claimed.lease_until)
    assert not await store.holds(forged, timedelta(0), now)
    await lapse()
    assert not await store.holds(claimed, timedelta(0), now)  # lapsed by the store's clock, whatever ``at`` says
    assert await store.flag_if_abandoned(request_id, "Needs attention", now)
    assert not await store.holds(claimed, timedelta(0), now)  # flagged by another worker: never act


async def test_a_finished_change_keeps_the_world_it_left_with_its_mac(store: ApprovalStore) -> None:
    request_id = await approved(store)
    claimed = await claim(store)
    assert claimed is not None
    after = "server=yes;key=7@2026-12-01T05:00:00+00:00;tdo=yes;tdo_keys=3.99"
    finished = await store.finish(
        claimed, RequestState.SUCCEEDED, "rotated", datetime.now(UTC), after=after, after_mac="v2:m"
    )
    assert finished == FinishResult.FINISHED
    done = await store.get(request_id)
    assert done is not None and done.after == after and done.after_mac == "v2:m"


async def test_a_worker_that_finishes_after_being_flagged_is_recorded_late(store: ApprovalStore) -> None:
    request_id = await approved(store)
    claimed = await store.claim_next("worker", SHORT, datetime.now(UTC))
    assert claimed is not None
    await lapse()
    later = datetime.now(UTC)
    assert await store.flag_if_abandoned(request_id, "Needs attention", later)
    assert await store.renew(claimed, LEASE, later) is None
    assert await store.finish(claimed, RequestState.SUCCEEDED, "rotated", later) == FinishResult.LATE
    kept = await store.get(request_id)
    assert kept is not None and kept.state == RequestState.ATTENTION
    late = [e for e in await store.audit(request_id) if e.event == "finished_late"]
    assert late and "succeeded: rotated" in late[0].detail


async def test_the_next_change_on_a_domain_runs_once_a_dead_claim_is_flagged(store: ApprovalStore) -> None:
    first = await approved(store)
    dead = await store.claim_next("w1", SHORT, datetime.now(UTC))
    assert dead is not None
    second = await approved(store)
    assert await claim(store, "w2") is None  # busy
    await lapse()
    assert await store.flag_if_abandoned(first, "Needs attention", datetime.now(UTC))
    nxt = await claim(store, "w2")
    assert nxt is not None and nxt.request.id == second


async def test_a_request_approved_longer_ago_than_its_ttl_expires_instead_of_running(store: ApprovalStore) -> None:
    request_id = await approved(store, ttl=timedelta(minutes=10))
    assert await claim(store, at=datetime.now(UTC) + timedelta(minutes=11)) is None
    stale = await store.get(request_id)
    assert (
        stale is not None and stale.state == RequestState.EXPIRED and "expired without running" in (stale.outcome or "")
    )
    # the next expiry sweep hands it on, once, so that its card and thread say so
    later = datetime.now(UTC) + timedelta(minutes=12)
    assert await store.expire_due(later) == [request_id]
    assert await store.expire_due(later) == []


async def test_a_deferred_request_waits_for_its_window_then_is_claimed_once(store: ApprovalStore) -> None:
    request_id = await approved(store, ttl=timedelta(minutes=10))
    now = datetime.now(UTC)
    claimed = await claim(store, "w1", now)
    assert claimed is not None
    opens = now + timedelta(hours=2)  # later than its time to live after the approval
    assert await store.defer(claimed, opens, "mac-of-it", "Waits for the change window.", now)
    waiting = await store.get(request_id)
    assert waiting is not None and waiting.state == RequestState.APPROVED
    assert waiting.waits_until == opens and waiting.waits_mac == "mac-of-it"
    assert waiting.outcome == "Waits for the change window."
    assert await store.lock_holder("contoso.test") is None and await store.executing() == []
    assert [e.event for e in await store.audit(request_id)][-1] == "waiting"
    assert not await store.defer(claimed, opens, "x", "again", now)  # no longer executing: not its claim's
    other = await approved(store)  # the domain is free for others meanwhile
    mine = await claim(store, "w2", now)
    assert mine is not None and mine.request.id == other
    await store.finish(mine, RequestState.SUCCEEDED, "done", now)
    assert await claim(store, "w2", opens - timedelta(seconds=1)) is None  # not before its window
    # its time to live counts from the opening: claimed within it, not expired
    again = await claim(store, "w2", opens + timedelta(minutes=5))
    assert again is not None and again.request.id == request_id
    assert await claim(store, "w3", opens + timedelta(minutes=6)) is None  # once


async def test_a_deferred_request_unclaimed_past_its_ttl_from_the_opening_expires(store: ApprovalStore) -> None:
    request_id = await approved(store, ttl=timedelta(minutes=10))
    now = datetime.now(UTC)
    claimed = await claim(store, "w1", now)
    assert claimed is not None
    opens = now + timedelta(hours=2)
    assert await store.defer(claimed, opens, "mac", "waits", now)
    assert await claim(store, "w1", opens + timedelta(minutes=11)) is None
    stale = await store.get(request_id)
    assert stale is not None and stale.state == RequestState.EXPIRED


async def test_a_second_rotation_filed_approved_with_its_first_goes_to_the_workers_at_once(
    store: ApprovalStore,
) -> None:
    first = new_request()
    second = replace(new_request(), follows=first.id, approved_with=first.id, state=RequestState.APPROVED)
    await store.create(second)
    kept = await store.get(second.id)
    assert kept is not None and kept.state == RequestState.APPROVED and kept.approved_with == first.id
    assert kept.approved_at is not None and kept.approvals == ()
    assert [(e.event, e.detail) for e in await store.audit(second.id)][-1] == ("approved", f"together with {first.id}")
    assert await store.expire_due(datetime.now(UTC) + timedelta(hours=2)) == []  # never pending: nothing to expire
    claimed = await claim(store)
    assert claimed is not None and claimed.request.id == second.id
    # a request filed without it is pending, whatever state the caller handed in
    plain = replace(new_request(), state=RequestState.APPROVED)
    await store.create(plain)
    assert (await store.get(plain.id)).state == RequestState.PENDING  # type: ignore[union-attr]


async def test_a_waiting_request_can_be_withdrawn_and_then_never_runs(store: ApprovalStore) -> None:
    request_id = await approved(store)
    now = datetime.now(UTC)
    assert (await store.withdraw(request_id, "U0CAROL", now)).verdict == Verdict.NOT_PENDING  # not waiting
    claimed = await claim(store, "w1", now)
    assert claimed is not None
    assert await store.defer(claimed, now + timedelta(hours=1), "mac", "waits", now)
    result = await store.withdraw(request_id, "U0CAROL", now)
    assert result.verdict == Verdict.CANCELLED and result.request is not None
    assert result.request.state == RequestState.CANCELLED and result.request.decided_by == "U0CAROL"
    assert (await store.withdraw(request_id, "U0CAROL", now)).verdict == Verdict.NOT_PENDING
    assert (await store.withdraw("nosuchrequest", "U0CAROL", now)).verdict == Verdict.NOT_FOUND
    assert await claim(store, "w1", now + timedelta(hours=2)) is None


async def test_pending_requests_soonest_to_expire_first_and_each_reminder_marked_once(store: ApprovalStore) -> None:
    later, sooner = new_request(ttl=timedelta(hours=4)), new_request(ttl=timedelta(hours=1))
    for request in (later, sooner):
        await store.create(request)
    decided = new_request()
    await store.create(decided)
    await store.approve(decided.id, "U0BOB", datetime.now(UTC))
    assert [r.id for r in await store.pending()] == [sooner.id, later.id]  # the approved one is not waiting
    assert await store.mark_reminded(sooner.id, 1)
    assert not await store.mark_reminded(sooner.id, 1)  # once, whoever asks
    assert (await store.get(sooner.id)).reminders_sent == 1  # type: ignore[union-attr]
    assert await store.mark_reminded(sooner.id, 2) and not await store.mark_reminded(sooner.id, 1)
    assert not await store.mark_reminded(decided.id, 1)  # decided: no reminders


async def test_a_claim_of_another_token_cannot_finish_or_renew(store: ApprovalStore) -> None:
    await approved(store)
    claimed = await claim(store)
    assert claimed is not None
    forged = Claim(claimed.request, "forged-token", claimed.lease_until)
    now = datetime.now(UTC)
    assert await store.renew(forged, LEASE, now) is None
    assert await store.finish(forged, RequestState.SUCCEEDED, "forged", now) == FinishResult.NOT_OURS
    assert (await store.get(claimed.request.id)).state == RequestState.EXECUTING  # type: ignore[union-attr]


async def test_the_sweep_forgets_old_finished_requests_and_audit_but_keeps_live_ones(store: ApprovalStore) -> None:
    done_id = await approved(store)
    done = await claim(store)
    assert done is not None
    await store.finish(done, RequestState.SUCCEEDED, "done", datetime.now(UTC))
    await approved(store, "fabrikam.test")
    running = await claim(store)
    assert running is not None
    pending = new_request(domain="other.test")
    await store.create(pending)
    assert await store.sweep(datetime.now(UTC) + timedelta(days=2), timedelta(days=1)) == 1
    assert await store.get(done_id) is None
    assert await store.get(running.request.id) is not None and await store.get(pending.id) is not None
    assert await store.audit(done_id) == []


async def test_a_domains_requests_newest_first_and_only_that_domain(store: ApprovalStore) -> None:
    older, other, newer = new_request(), new_request(domain="fabrikam.test"), new_request()
    older = replace(older, created_at=older.created_at - timedelta(minutes=5))
    for request in (older, other, newer):
        await store.create(request)
    assert [r.id for r in await store.for_domain("contoso.test")] == [newer.id, older.id]
    assert [r.id for r in await store.for_domain("contoso.test", count=1)] == [newer.id]
    assert [r.id for r in await store.for_domain("fabrikam.test")] == [other.id]
    assert await store.for_domain("nowhere.test") == []
