"""Verified approvals with in-memory fakes: an approval of a dangerous action counts only after a
sign-in made for it (one request, one approver, once), fresh, with MFA, by the right user, who is in
the Entra approver group."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.domain.integrity import Signer
from bot.domain.verification import (
    BrowserSignInStart,
    DeviceCodePrompt,
    SignInAbandoned,
    SignInRefused,
    VerificationPolicy,
    check_claims,
)
from bot.services.changes.executor import Execution
from bot.services.verification import ApproverVerification, IdentityUnknown, SignInFor
from tests.support.engine import Clock, engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore, FakeSignInTickets
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, FakeKerberosModule, on_prem_state

TENANT = "11111111-2222-3333-4444-555555555555"
APPROVER_GROUP = "group-approvers"
ADMINS = "S0ADMINS"
OIDS = {"bob@contoso.test": "oid-bob", "carol@contoso.test": "oid-carol", "dave@contoso.test": "oid-dave"}
ORIGIN = "T0/A0/C0"


def claims_of(upn: str, *, mfa: bool = True, tenant: str = TENANT, auth_time: datetime | None = NOW) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "tid": tenant,
        "oid": OIDS.get(upn, "oid-other"),
        "preferred_username": upn,
        "amr": ["pwd", "mfa"] if mfa else ["pwd"],
    }
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    return claims


class FakeBrowser:
    """The identity platform behind the browser: codes bound to the flow (state and nonce) they were made for."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self._codes: dict[str, tuple[str, dict[str, Any]]] = {}  # code -> (state, claims)

    async def start(
        self, *, redirect_uri: str, login_hint: str, max_age: timedelta, auth_context: str | None
    ) -> BrowserSignInStart:
        state = secrets.token_urlsafe(8)
        flow = {"state": state, "nonce": secrets.token_hex(8), "login_hint": login_hint, "max_age": max_age}
        flow["auth_context"] = auth_context
        self.started.append({**flow, "redirect_uri": redirect_uri})
        return BrowserSignInStart(f"https://login.test/authorize?state={state}", state, {"state": state})

    def sign_in(self, state: str, upn: str, **claims: Any) -> dict[str, str]:
        """The approver signs in at the page of ``state``'s link; the browser comes back with this."""
        code = secrets.token_urlsafe(8)
        self._codes[code] = (state, claims_of(upn, **claims))
        return {"code": code, "state": state}

    async def redeem(self, flow: Mapping[str, Any], response: Mapping[str, str]) -> Mapping[str, Any]:
        if response.get("error"):
            raise SignInAbandoned("the sign-in was cancelled, declined or blocked")
        found = self._codes.pop(response.get("code", ""), None)
        if found is None:
            raise SignInRefused("Entra ID refused the sign-in answer: its code was already used")
        state, claims = found
        if state != flow["state"]:
            raise SignInRefused("the sign-in answer does not belong to this sign-in link (its nonce differs)")
        return claims


class FakeSession:
    def __init__(self, code: str) -> None:
        self.prompt = DeviceCodePrompt(code, "https://microsoft.com/devicelogin", NOW + timedelta(minutes=15))
        self._result: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self.cancelled = False

    def sign_in(self, upn: str, **claims: Any) -> None:
        self._result.set_result(claims_of(upn, **claims))

    def abandon(self, why: str = "the sign-in code expired before the sign-in was completed") -> None:
        self._result.set_exception(SignInAbandoned(why))

    async def claims(self) -> Mapping[str, Any]:
        return await self._result

    def cancel(self) -> None:
        self.cancelled = True
        if not self._result.done():
            self._result.set_exception(SignInAbandoned("the sign-in was called off"))
            self._result.exception()  # nobody may be waiting; mark it seen


class FakeDeviceCode:
    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []

    async def start(self) -> FakeSession:
        session = FakeSession(f"CODE{len(self.sessions) + 1}")
        self.sessions.append(session)
        return session


class FakeMembership:
    def __init__(self, members: set[str], object_ids: dict[str, str] | None = None) -> None:
        self.members = members
        self.object_ids = object_ids or {}  # UPN (lower case) -> object id

    async def is_transitive_member(self, user_object_id: str, group_id: str) -> bool:
        return group_id == APPROVER_GROUP and user_object_id in self.members

    async def object_id_of(self, user_principal_name: str) -> str | None:
        return self.object_ids.get(user_principal_name.lower())


class FakeProfiles:
    def __init__(self, emails: dict[str, str | None]) -> None:
        self.emails = emails

    async def email_of(self, chat_user: str) -> str | None:
        return self.emails.get(chat_user)


class World:
    def __init__(self, *, device_code: bool = False, **policy: Any) -> None:
        self.clock = Clock()
        directories = {
            "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(hours=2)))
        }
        self.store = FakeApprovalStore()
        self.browser = FakeBrowser()
        self.device_code = FakeDeviceCode()
        self.tickets = FakeSignInTickets(self.clock)
        self.profiles = profiles = FakeProfiles(
            {"U0BOB": "bob@contoso.test", "U0CAROL": "carol@contoso.test", "U0DAVE": "dave@contoso.test", "U0EVE": None}
        )
        self.membership = FakeMembership({"oid-bob", "oid-carol"})
        common: dict[str, Any] = {
            "membership": self.membership,
            "profiles": profiles,
            "policy": VerificationPolicy(TENANT, APPROVER_GROUP, **policy),
            "clock": self.clock,
        }
        if device_code:
            self.verification = ApproverVerification(**common, device_code=self.device_code)
        else:
            self.verification = ApproverVerification(
                **common,
                browser=self.browser,
                tickets=self.tickets,
                signer=Signer(b"k" * 32),
                redirect_uri="https://bot.test/auth/callback",
            )
        policies = {
            Action.ROTATE: ActionPolicy(1, timedelta(hours=4), frozenset(), frozenset({ADMINS})),
            Action.ROTATE_FORCE: ActionPolicy(
                2, timedelta(hours=1), frozenset(), frozenset({ADMINS}), verified_approval=True
            ),
        }
        self.service = engine_on_fakes(
            store=self.store,
            module=FakeKerberosModule.in_step(directories),
            directories=directories,
            groups=FakeGroups({ADMINS: frozenset({"U0ALICE", "U0ALICE2", "U0BOB", "U0CAROL", "U0DAVE", "U0EVE"})}),
            policies=policies,
            clock=self.clock,
            verification=self.verification,
        )

    async def forced(self) -> str:
        request = await self.service.intake.request_rotation(
            "contoso.test", requester="U0ALICE", reason="key leaked", force=True
        )
        return request.id

    @staticmethod
    def binding(request_id: str, user: str) -> SignInFor:
        return SignInFor(request_id, "rotate_force", user, ORIGIN, "C0")

    async def link(self, request_id: str, user: str) -> str:
        """Click Approve: the state of the sign-in link the approver gets."""
        assert (await self.service.decisions.approve(request_id, user, ORIGIN)).verdict == Verdict.VERIFY_FIRST
        await self.verification.begin_browser(self.binding(request_id, user))
        return str(self.browser.started[-1]["state"])

    async def sign_in_and_approve(self, request_id: str, user: str, upn: str, **claims: Any) -> Verdict | None:
        state = await self.link(request_id, user)
        result = await self.verification.complete_browser(state, self.browser.sign_in(state, upn, **claims))
        if result.outcome.identity is None:
            return None
        assert result.binding is not None
        approved = await self.service.decisions.approve(
            result.binding.request_id, user, result.binding.origin, identity=result.outcome.identity
        )
        return approved.verdict


async def test_a_browser_sign_in_approves_its_request_with_the_entra_identity() -> None:
    world = World()
    request_id = await world.forced()
    state = await world.link(request_id, "U0BOB")
    started = world.browser.started[-1]
    assert started["login_hint"] == "bob@contoso.test" and started["max_age"] == timedelta(minutes=5)
    assert started["redirect_uri"] == "https://bot.test/auth/callback"
    assert world.store.requests[request_id].approvals == ()  # nothing counted before the sign-in
    signed_at = NOW - timedelta(minutes=1)
    world.clock.now = NOW
    result = await world.verification.complete_browser(
        state, world.browser.sign_in(state, "bob@contoso.test", auth_time=signed_at)
    )
    assert result.binding == world.binding(request_id, "U0BOB")
    identity = result.outcome.identity
    assert identity is not None and (identity.object_id, identity.upn, identity.mfa) == (
        "oid-bob",
        "bob@contoso.test",
        True,
    )
    assert identity.signed_in_at == signed_at  # the sign-in's own time, not the bot's clock
    approved = await world.service.decisions.approve(request_id, "U0BOB", ORIGIN, identity=identity)
    assert approved.verdict == Verdict.RECORDED
    (entry,) = [e for e in world.store.entries if e.event == "approved"]
    assert entry.extra["entra_oid"] == "oid-bob" and entry.detail == "verified as bob@contoso.test, MFA"


async def test_a_sign_in_counts_for_one_request_only() -> None:
    world = World()
    first, second = await world.forced(), await world.forced()
    assert await world.sign_in_and_approve(first, "U0BOB", "bob@contoso.test") == Verdict.RECORDED
    # right after it, the same approver on another request: asked to sign in again, nothing counted
    assert (await world.service.decisions.approve(second, "U0BOB", ORIGIN)).verdict == Verdict.VERIFY_FIRST
    assert world.store.requests[second].approvals == ()


async def test_two_verified_approvers_approve_and_it_runs() -> None:
    world = World()
    request_id = await world.forced()
    assert await world.sign_in_and_approve(request_id, "U0BOB", "bob@contoso.test") == Verdict.RECORDED
    assert await world.sign_in_and_approve(request_id, "U0CAROL", "carol@contoso.test") == Verdict.APPROVED
    execution = await world.service.executor.execute_next("worker")
    assert isinstance(execution, Execution) and execution.succeeded


async def test_a_link_counts_once_and_a_foreign_state_counts_never() -> None:
    world = World()
    request_id = await world.forced()
    state = await world.link(request_id, "U0BOB")
    answer = world.browser.sign_in(state, "bob@contoso.test")
    assert (await world.verification.complete_browser(state, answer)).outcome.identity is not None
    replayed = await world.verification.complete_browser(state, answer)
    assert replayed.binding is None and "already used" in (replayed.outcome.problem or "")
    assert replayed.replayed == world.binding(request_id, "U0BOB")  # traced to the approval it was made for
    foreign = await world.verification.complete_browser("made-up", {"code": "x", "state": "made-up"})
    assert foreign.binding is None and "not one the bot is waiting for" in (foreign.outcome.problem or "")


async def test_an_answer_brought_to_another_links_callback_is_refused() -> None:
    world = World()
    first, second = await world.forced(), await world.forced()
    state_a = await world.link(first, "U0BOB")
    state_b = await world.link(second, "U0BOB")
    answer_b = world.browser.sign_in(state_b, "bob@contoso.test")
    crossed = await world.verification.complete_browser(state_a, {**answer_b, "state": state_a})
    assert crossed.outcome.identity is None and "does not belong" in (crossed.outcome.problem or "")


@pytest.mark.parametrize(
    ("user", "upn", "claims", "reason"),
    [
        ("U0BOB", "bob@contoso.test", {"mfa": False}, "did not use multi-factor authentication"),
        ("U0DAVE", "dave@contoso.test", {}, "not a member of the Entra approver group"),
        ("U0BOB", "carol@contoso.test", {}, "this Slack account belongs to bob@contoso.test"),
        ("U0BOB", "bob@contoso.test", {"tenant": "another-tenant"}, "another tenant"),
        ("U0BOB", "bob@contoso.test", {"auth_time": NOW - timedelta(minutes=6)}, "more than 5 minutes ago"),
        ("U0BOB", "bob@contoso.test", {"auth_time": NOW + timedelta(minutes=5)}, "in the future"),
        ("U0BOB", "bob@contoso.test", {"auth_time": None}, "no auth_time"),
    ],
    ids=["no-mfa", "not-in-group", "another-user", "other-tenant", "stale", "future", "no-auth-time"],
)
async def test_a_sign_in_that_does_not_verify_the_approver_is_refused(
    user: str, upn: str, claims: dict[str, Any], reason: str
) -> None:
    world = World()
    request_id = await world.forced()
    state = await world.link(request_id, user)
    result = await world.verification.complete_browser(state, world.browser.sign_in(state, upn, **claims))
    assert result.outcome.identity is None and not result.outcome.abandoned
    assert result.outcome.problem is not None and reason in result.outcome.problem
    await world.service.decisions.refuse_unverified(request_id, user, result.outcome.problem)
    assert world.store.requests[request_id].approvals == ()
    refusals = [e for e in world.store.entries if e.event == "refused" and e.actor == user]
    assert any(reason in r.detail for r in refusals)


async def test_an_authentication_context_is_asked_for_and_checked() -> None:
    world = World(auth_context="c1")
    request_id = await world.forced()
    state = await world.link(request_id, "U0BOB")
    assert world.browser.started[-1]["auth_context"] == "c1"
    result = await world.verification.complete_browser(state, world.browser.sign_in(state, "bob@contoso.test"))
    assert "authentication context c1" in (result.outcome.problem or "")
    state = await world.link(request_id, "U0BOB")
    answer = world.browser.sign_in(state, "bob@contoso.test")
    world.browser._codes[answer["code"]][1]["acrs"] = ["c1"]
    assert (await world.verification.complete_browser(state, answer)).outcome.identity is not None


async def test_an_expired_link_and_a_declined_sign_in_leave_the_request_open() -> None:
    world = World()
    request_id = await world.forced()
    state = await world.link(request_id, "U0BOB")
    world.clock.now += timedelta(minutes=9)  # the ticket outlives its link here, as Redis' TTL would not
    world.tickets.tickets[state] = (world.tickets.tickets[state][0], world.clock.now + timedelta(hours=1))
    world.clock.now += timedelta(minutes=2)
    late = await world.verification.complete_browser(state, world.browser.sign_in(state, "bob@contoso.test"))
    assert late.outcome.abandoned and "expired" in (late.outcome.problem or "")
    state = await world.link(request_id, "U0BOB")
    declined = await world.verification.complete_browser(state, {"error": "access_denied", "state": state})
    assert declined.outcome.abandoned and declined.binding is not None
    assert world.store.requests[request_id].state == RequestState.PENDING


async def test_a_ticket_written_by_anything_but_the_bot_is_refused() -> None:
    world = World()
    request_id = await world.forced()
    state = await world.link(request_id, "U0BOB")
    envelope = json.loads(world.tickets.tickets[state][0])
    body = json.loads(envelope["body"])
    body["binding"]["request_id"] = "someone-elses"
    forged = json.dumps({"body": json.dumps(body, sort_keys=True), "mac": envelope["mac"]})
    world.tickets.tickets[state] = (forged, world.clock.now + timedelta(minutes=5))
    result = await world.verification.complete_browser(state, world.browser.sign_in(state, "bob@contoso.test"))
    assert result.binding is None and "tampered" in (result.outcome.problem or "")


async def test_device_code_a_second_click_on_the_same_request_shows_the_same_code() -> None:
    world = World(device_code=True)
    first, second = await world.forced(), await world.forced()
    one = await world.verification.start_device_code(world.binding(first, "U0BOB"))
    again = await world.verification.start_device_code(world.binding(first, "U0BOB"))
    other = await world.verification.start_device_code(world.binding(second, "U0BOB"))
    assert one.new and not again.new and other.new
    assert again.prompt.user_code == one.prompt.user_code != other.prompt.user_code
    world.device_code.sessions[0].sign_in("bob@contoso.test")
    assert (await again.outcome).identity == (await one.outcome).identity is not None
    assert verification_open(world) == 1  # the other request's sign-in is its own, still open
    world.device_code.sessions[1].abandon()
    outcome = await other.outcome
    assert outcome.abandoned and "expired" in (outcome.problem or "")
    assert verification_open(world) == 0


def verification_open(world: World) -> int:
    return world.verification.in_progress()


async def test_refusals_that_need_no_sign_in_come_first() -> None:
    world = World()
    request_id = await world.forced()
    assert (await world.service.decisions.approve(request_id, "U0ALICE")).verdict == Verdict.SELF_APPROVAL
    assert (await world.service.decisions.approve(request_id, "U0MALLORY")).verdict == Verdict.NOT_ALLOWED
    assert (await world.service.decisions.approve("nope", "U0BOB")).verdict == Verdict.NOT_FOUND
    assert world.browser.started == []


async def test_without_the_setting_approvals_behave_as_before() -> None:
    world = World()
    world.clock.now += timedelta(days=2)  # outside the 24-hour window: a plain rotation
    request = await world.service.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="routine", force=False
    )
    result = await world.service.decisions.approve(request.id, "U0BOB")
    assert result.verdict == Verdict.APPROVED
    assert result.request is not None and result.request.approvals[0].identity is None
    assert world.browser.started == []


async def test_an_explicit_mapping_wins_over_the_profile_email() -> None:
    world = World(identities={"U0EVE": "carol@contoso.test"})
    assert await world.verification.expected_user("U0EVE") == "carol@contoso.test"
    request_id = await world.forced()
    assert await world.sign_in_and_approve(request_id, "U0EVE", "carol@contoso.test") == Verdict.RECORDED


async def test_no_email_and_no_mapping_is_refused_before_any_sign_in() -> None:
    world = World()
    with pytest.raises(IdentityUnknown, match="no e-mail"):
        await world.verification.begin_browser(world.binding("r", "U0EVE"))
    assert world.browser.started == [] and world.tickets.tickets == {}


async def test_closing_calls_off_open_device_code_sign_ins() -> None:
    world = World(device_code=True)
    await world.verification.start_device_code(world.binding("r", "U0BOB"))
    await world.verification.close()
    assert world.device_code.sessions[0].cancelled
    assert world.verification.in_progress() == 0


def test_claims_checks_name_what_is_wrong() -> None:
    policy = VerificationPolicy(TENANT, APPROVER_GROUP)
    good = {
        "tid": TENANT,
        "oid": "x",
        "preferred_username": "Bob@Contoso.test",
        "amr": ["pwd", "mfa"],
        "auth_time": int(NOW.timestamp()),
    }
    assert check_claims(good, policy, "bob@contoso.test", now=NOW) == ("x", "Bob@Contoso.test", True)
    with pytest.raises(SignInRefused, match="no user object"):
        check_claims({**good, "oid": ""}, policy, "bob@contoso.test", now=NOW)
    with pytest.raises(SignInRefused, match="multi-factor"):
        check_claims({**good, "amr": "mfa"}, policy, "bob@contoso.test", now=NOW)  # amr must be a list
    with pytest.raises(SignInRefused, match="no auth_time"):
        check_claims({**good, "auth_time": True}, policy, "bob@contoso.test", now=NOW)  # a bool is no time
    assert check_claims(good, policy, "bob@contoso.test", now=NOW + timedelta(minutes=5))  # exactly the bound
    with pytest.raises(SignInRefused, match="more than 5 minutes ago"):
        check_claims(good, policy, "bob@contoso.test", now=NOW + timedelta(minutes=5, seconds=1))


async def test_the_requester_cannot_approve_from_a_second_slack_account_under_another_of_their_names() -> None:
    world = World()
    # Alice asks; her second Slack account's profile shows another of her names; Entra knows one person
    world.profiles.emails.update({"U0ALICE": "alice@contoso.test", "U0ALICE2": "a.smith@contoso.test"})
    world.membership.object_ids["alice@contoso.test"] = "oid-alice"
    world.membership.members.add("oid-alice")
    OIDS["a.smith@contoso.test"] = "oid-alice"
    try:
        request_id = await world.forced()
        assert world.store.requests[request_id].requester_oid == "oid-alice"  # resolved when it was made
        verdict = await world.sign_in_and_approve(request_id, "U0ALICE2", "a.smith@contoso.test")
        assert verdict == Verdict.SELF_APPROVAL
        assert world.store.requests[request_id].approvals == ()
    finally:
        del OIDS["a.smith@contoso.test"]
