"""Verified approvals with in-memory fakes: an approval of a dangerous action counts only after a
fresh Entra sign-in with MFA by the right user, who is in the Entra approver group."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.domain.diagnosis import RotationPolicy
from bot.domain.verification import DeviceCodePrompt, SignInAbandoned, VerificationPolicy, check_claims
from bot.services.changes import ChangeService
from bot.services.verification import ApproverVerification, IdentityUnknown
from tests.support.fake_approvals import FakeApprovalStore, FakeVerifications
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, on_prem_state

TENANT = "11111111-2222-3333-4444-555555555555"
APPROVER_GROUP = "group-approvers"
ADMINS = "S0ADMINS"
OIDS = {"bob@contoso.test": "oid-bob", "carol@contoso.test": "oid-carol", "dave@contoso.test": "oid-dave"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class FakeSession:
    def __init__(self, code: str) -> None:
        self.prompt = DeviceCodePrompt(code, "https://microsoft.com/devicelogin", NOW + timedelta(minutes=15))
        self._result: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self.cancelled = False

    def sign_in(self, upn: str, *, mfa: bool = True, tenant: str = TENANT) -> None:
        amr = ["pwd", "mfa"] if mfa else ["pwd"]
        claims = {"tid": tenant, "oid": OIDS.get(upn, "oid-other"), "preferred_username": upn, "amr": amr}
        self._result.set_result(claims)

    def abandon(self, why: str = "the sign-in code expired before the sign-in was completed") -> None:
        self._result.set_exception(SignInAbandoned(why))

    async def claims(self) -> Mapping[str, Any]:
        return await self._result

    def cancel(self) -> None:
        self.cancelled = True
        if not self._result.done():
            self._result.set_exception(SignInAbandoned("the sign-in was called off"))
            self._result.exception()  # nobody may be waiting; mark it seen


class FakeSignIn:
    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []

    async def start(self) -> FakeSession:
        session = FakeSession(f"CODE{len(self.sessions) + 1}")
        self.sessions.append(session)
        return session


class FakeMembership:
    def __init__(self, members: set[str]) -> None:
        self.members = members

    async def is_transitive_member(self, user_object_id: str, group_id: str) -> bool:
        return group_id == APPROVER_GROUP and user_object_id in self.members


class FakeProfiles:
    def __init__(self, emails: dict[str, str | None]) -> None:
        self.emails = emails

    async def email_of(self, chat_user: str) -> str | None:
        return self.emails.get(chat_user)


def make(identities: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    clock = Clock()
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(hours=2)))
    }
    store = FakeApprovalStore()
    sign_in = FakeSignIn()
    verifications = FakeVerifications(clock)
    verification = ApproverVerification(
        sign_in=sign_in,
        membership=FakeMembership({"oid-bob", "oid-carol"}),
        profiles=FakeProfiles(
            {"U0BOB": "bob@contoso.test", "U0CAROL": "carol@contoso.test", "U0DAVE": "dave@contoso.test", "U0EVE": None}
        ),
        store=verifications,
        policy=VerificationPolicy(TENANT, APPROVER_GROUP, timedelta(minutes=10), identities),
        clock=clock,
    )
    policies = {
        Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})),
        Action.ROTATE_FORCE: ActionPolicy(
            2, timedelta(hours=1), frozenset(), frozenset({ADMINS}), verified_approval=True
        ),
    }
    service = ChangeService(
        store=store,
        module=FakeKerberosModule.in_step(directories),
        directories=directories,
        groups=FakeGroups({ADMINS: frozenset({"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0EVE"})}),
        policies=policies,
        rotation=RotationPolicy(),
        clock=clock,
        verification=verification,
    )
    return service, verification, sign_in, store, clock


async def forced(service: ChangeService) -> str:
    request = await service.request_rotation("contoso.test", requester="U0ALICE", reason="key leaked", force=True)
    return request.id


async def verify(verification: ApproverVerification, sign_in: FakeSignIn, user: str, upn: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    pending = await verification.start(user)
    sign_in.sessions[-1].sign_in(upn, **kwargs)
    return await pending.outcome


async def test_a_verified_approval_counts_and_carries_the_entra_identity() -> None:
    service, verification, sign_in, store, _ = make()
    request_id = await forced(service)
    first = await service.approve(request_id, "U0BOB")
    assert first.verdict == Verdict.VERIFY_FIRST
    assert first.request is not None and first.request.approvals == ()  # nothing recorded before the sign-in
    outcome = await verify(verification, sign_in, "U0BOB", "bob@contoso.test")
    assert outcome.identity is not None and outcome.identity.upn == "bob@contoso.test"
    result = await service.approve(request_id, "U0BOB")
    assert result.verdict == Verdict.RECORDED
    assert result.request is not None
    (approval,) = result.request.approvals
    assert approval.identity is not None
    assert (approval.identity.object_id, approval.identity.upn, approval.identity.mfa) == (
        "oid-bob",
        "bob@contoso.test",
        True,
    )
    assert approval.identity.signed_in_at == NOW
    (entry,) = [e for e in store.entries if e.event == "approved"]
    assert entry.extra["entra_oid"] == "oid-bob" and entry.extra["entra_upn"] == "bob@contoso.test"
    assert entry.detail == "verified as bob@contoso.test, MFA"


async def test_two_verified_approvers_approve_and_it_runs() -> None:
    service, verification, sign_in, _store, _ = make()
    request_id = await forced(service)
    for user, upn in (("U0BOB", "bob@contoso.test"), ("U0CAROL", "carol@contoso.test")):
        await verify(verification, sign_in, user, upn)
    await service.approve(request_id, "U0BOB")
    assert (await service.approve(request_id, "U0CAROL")).verdict == Verdict.APPROVED
    execution = await service.execute_next("worker")
    assert execution is not None and execution.succeeded


@pytest.mark.parametrize(
    ("user", "upn", "kwargs", "reason"),
    [
        ("U0BOB", "bob@contoso.test", {"mfa": False}, "did not use multi-factor authentication"),
        ("U0DAVE", "dave@contoso.test", {}, "not a member of the Entra approver group"),
        ("U0BOB", "carol@contoso.test", {}, "this Slack account belongs to bob@contoso.test"),
        ("U0BOB", "bob@contoso.test", {"tenant": "another-tenant"}, "another tenant"),
    ],
    ids=["no-mfa", "not-in-group", "email-mismatch", "other-tenant"],
)
async def test_a_sign_in_that_does_not_verify_the_approver_is_refused(
    user: str, upn: str, kwargs: dict[str, Any], reason: str
) -> None:
    service, verification, sign_in, store, _ = make()
    request_id = await forced(service)
    outcome = await verify(verification, sign_in, user, upn, **kwargs)
    assert outcome.identity is None and not outcome.abandoned
    assert outcome.problem is not None and reason in outcome.problem
    await service.refuse_unverified(request_id, user, outcome.problem)
    # still not verified: a click is asked to sign in again, nothing is counted
    again = await service.approve(request_id, user)
    assert again.verdict == Verdict.VERIFY_FIRST
    assert again.request is not None and again.request.approvals == ()
    refusals = [e for e in store.entries if e.event == "refused" and e.actor == user]
    assert any(reason in r.detail for r in refusals)
    assert refusals[-1].detail == "verify_first"  # the click after it is audited too


async def test_a_stale_verification_is_asked_again() -> None:
    service, verification, sign_in, _store, clock = make()
    first = await forced(service)
    await verify(verification, sign_in, "U0BOB", "bob@contoso.test")
    clock.now += timedelta(minutes=9)
    assert (await service.approve(first, "U0BOB")).verdict == Verdict.RECORDED
    second = await forced(service)
    clock.now += timedelta(minutes=2)  # 11 minutes after the sign-in: older than the 10-minute window
    assert (await service.approve(second, "U0BOB")).verdict == Verdict.VERIFY_FIRST


async def test_an_abandoned_sign_in_leaves_the_request_pending_until_it_expires() -> None:
    service, verification, sign_in, store, clock = make()
    request_id = await forced(service)
    pending = await verification.start("U0BOB")
    sign_in.sessions[-1].abandon()
    outcome = await pending.outcome
    assert outcome.abandoned and outcome.identity is None and "expired" in (outcome.problem or "")
    assert store.requests[request_id].state == RequestState.PENDING
    clock.now += timedelta(hours=2)
    expired = await service.expire_due()
    assert [r.id for r in expired] == [request_id]
    assert store.requests[request_id].state == RequestState.EXPIRED


async def test_a_second_click_during_the_sign_in_shows_the_same_code_and_shares_the_outcome() -> None:
    _service, verification, sign_in, _store, _ = make()
    first = await verification.start("U0BOB")
    second = await verification.start("U0BOB")
    assert first.new and not second.new
    assert second.prompt.user_code == first.prompt.user_code and len(sign_in.sessions) == 1
    sign_in.sessions[0].sign_in("bob@contoso.test")
    assert (await second.outcome).identity == (await first.outcome).identity
    assert verification.in_progress() == 0


async def test_refusals_that_need_no_sign_in_come_first() -> None:
    service, _verification, sign_in, _store, _ = make()
    request_id = await forced(service)
    assert (await service.approve(request_id, "U0ALICE")).verdict == Verdict.SELF_APPROVAL
    assert (await service.approve(request_id, "U0MALLORY")).verdict == Verdict.NOT_ALLOWED
    assert (await service.approve("nope", "U0BOB")).verdict == Verdict.NOT_FOUND
    assert sign_in.sessions == []


async def test_without_the_setting_approvals_behave_as_before() -> None:
    service, _verification, sign_in, _store, clock = make()
    clock.now += timedelta(days=2)  # outside the 24-hour window: a plain rotation
    request = await service.request_rotation("contoso.test", requester="U0ALICE", reason="routine", force=False)
    result = await service.approve(request.id, "U0BOB")
    assert result.verdict == Verdict.APPROVED
    assert result.request is not None and result.request.approvals[0].identity is None
    assert sign_in.sessions == []


async def test_an_explicit_mapping_wins_over_the_profile_email() -> None:
    _service, verification, sign_in, _store, _ = make(identities={"U0EVE": "carol@contoso.test"})
    assert await verification.expected_user("U0EVE") == "carol@contoso.test"
    outcome = await verify(verification, sign_in, "U0EVE", "carol@contoso.test")
    assert outcome.identity is not None


async def test_no_email_and_no_mapping_is_refused_before_any_sign_in() -> None:
    _service, verification, sign_in, _store, _ = make()
    with pytest.raises(IdentityUnknown, match="no e-mail"):
        await verification.start("U0EVE")
    assert sign_in.sessions == []


async def test_closing_calls_off_open_sign_ins() -> None:
    _service, verification, sign_in, _store, _ = make()
    await verification.start("U0BOB")
    await verification.close()
    assert sign_in.sessions[0].cancelled
    assert verification.in_progress() == 0


def test_claims_checks_name_what_is_wrong() -> None:
    policy = VerificationPolicy(TENANT, APPROVER_GROUP)
    good = {"tid": TENANT, "oid": "x", "preferred_username": "Bob@Contoso.test", "amr": ["pwd", "mfa"]}
    assert check_claims(good, policy, "bob@contoso.test") == ("x", "Bob@Contoso.test", True)
    with pytest.raises(Exception, match="no user object"):
        check_claims({**good, "oid": ""}, policy, "bob@contoso.test")
    with pytest.raises(Exception, match="multi-factor"):
        check_claims({**good, "amr": "mfa"}, policy, "bob@contoso.test")  # amr must be a list
