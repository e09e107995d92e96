"""One browser sign-in per approval, on real parts: signed Slack clicks, the link shown only to the
approver, headless Chromium at the Entra stand-in's pages (password, MFA), msal's authorization code
flow with PKCE, the answer posted back to the bot's /auth/callback, Graph's group check, Redis, the
Samba DC. The attacks are played with the same pages walked over HTTP (``SignInWalker``), which can
keep the answer to replay or alter it."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kerberos_sandbox.entra_people import SANDBOX_MFA_CODE, SANDBOX_PASSWORD
from kerberos_sandbox.sandbox import Sandbox, sandbox
from kerberos_sandbox.sign_in_client import SignInWalker
from kerberos_sandbox.slack_requests import block_actions_payload
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from bot.domain.approvals import RequestState
from bot.domain.verification import CALLBACK_PATH
from handlers.sign_in_page import CONFIRM_PATH
from handlers.views.cards import APPROVE_ACTION, SIGN_IN_LINK_ACTION
from tests.integration.test_rotate_slack import blocks_of, click, request_via_slack, wait_for_state
from tests.support.browser import chromium, close, waiting
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox"))) as running:
        yield running


@pytest.fixture
def browsers(tmp_path: Path, box: Sandbox) -> Iterator[Any]:
    """make() -> a new headless Chromium (its own profile) trusting the stand-in's CA; all quit after."""
    made: list[webdriver.Chrome] = []

    def make() -> webdriver.Chrome:
        driver = chromium(tmp_path / f"browser-{len(made)}", box.entra.ca_file)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        close(driver)


@pytest.fixture(autouse=True)
def standin_knobs(box: Sandbox) -> Iterator[None]:
    yield
    people = box.entra.people
    people.honour_prompt_login, people.auth_time_shift = True, 0.0
    for user in people.users.values():
        user.mfa_registered = True


def ephemeral_bodies(box: Sandbox, user: str) -> list[dict[str, Any]]:
    return [c.body for c in box.slack.api_calls("chat.postEphemeral") if c.body.get("user") == user]


def link_in(body: dict[str, Any]) -> str | None:
    for block in blocks_of(body):
        url = (block.get("accessory") or {}).get("url")
        if url:
            return str(url)
    return None


async def approve_for_link(box: Sandbox, user: str, value: str, ts: str) -> str:
    """Click Approve as ``user``: the sign-in link the bot shows only to them."""
    seen = len(ephemeral_bodies(box, user))
    assert await click(box, user, APPROVE_ACTION, value, ts) == 200
    for _ in range(100):
        for body in ephemeral_bodies(box, user)[seen:]:
            if (url := link_in(body)) is not None:
                return url
        await asyncio.sleep(0.05)
    raise AssertionError(f"no sign-in link for {user}: {ephemeral_bodies(box, user)[seen:]}")


async def next_ephemeral(box: Sandbox, user: str, seen: int, needle: str) -> str:
    for _ in range(100):
        for body in ephemeral_bodies(box, user)[seen:]:
            if needle in str(body.get("text")):
                return str(body.get("text"))
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message to {user} with {needle!r}: {ephemeral_bodies(box, user)[seen:]}")


def sign_in_in_browser(driver: webdriver.Chrome, link: str, upn: str, answer: str = "approve") -> str:
    """What the approver does: open the link, sign in with password and MFA code, then on the bot's page
    confirm the approval (or say "This is not mine"); the page they land on."""
    driver.get(link)
    username = waiting(driver).until(EC.visibility_of_element_located((By.NAME, "username")))
    assert username.get_attribute("value") == upn  # login_hint: the account the bot expects
    driver.find_element(By.NAME, "password").send_keys(SANDBOX_PASSWORD)
    driver.find_element(By.ID, "next").click()
    waiting(driver).until(EC.visibility_of_element_located((By.NAME, "otc"))).send_keys(SANDBOX_MFA_CODE)
    driver.find_element(By.ID, "verify").click()
    waiting(driver).until(EC.url_contains(CALLBACK_PATH))
    waiting(driver).until(EC.presence_of_element_located((By.ID, answer))).click()  # the page names the change
    waiting(driver).until(EC.url_contains(CONFIRM_PATH))
    waiting(driver).until(EC.presence_of_element_located((By.ID, "outcome")))
    return str(driver.find_element(By.TAG_NAME, "body").text)


async def test_each_approver_signs_in_in_a_real_browser_and_the_card_follows(box: Sandbox, browsers: Any) -> None:
    request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- browser sign-in")
    assert request.approvals_required == 2
    link = await approve_for_link(box, "U0BOB", value, ts)
    prompt = ephemeral_bodies(box, "U0BOB")[-1]
    assert "bob@contoso.test" in json.dumps(blocks_of(prompt)) and "works once" in json.dumps(blocks_of(prompt))
    assert (await wait_for_state(box, request.id, {RequestState.PENDING})).approvals == ()

    page = await asyncio.to_thread(sign_in_in_browser, browsers(), link, "bob@contoso.test")
    assert "Approval recorded" in page and request.id in page and "bob@contoso.test" in page
    assert "1 of 2" in page and "You can close this tab." in page
    cards = [c.body for c in box.slack.api_calls("chat.update") if c.body.get("ts") == ts]
    assert "verified as bob@contoso.test, MFA" in json.dumps(blocks_of(cards[-1]))

    link = await approve_for_link(box, "U0CAROL", value, ts)
    page = await asyncio.to_thread(sign_in_in_browser, browsers(), link, "carol@contoso.test")
    assert "Approval recorded" in page and "the change starts" in page
    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
    assert done.state == RequestState.SUCCEEDED, done.outcome
    assert [(a.approver, a.identity.upn if a.identity else None) for a in done.approvals] == [
        ("U0BOB", "bob@contoso.test"),
        ("U0CAROL", "carol@contoso.test"),
    ]
    thread = [c.body["text"] for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]
    assert any("approved (verified as carol@contoso.test, MFA) (2 of 2)" in t for t in thread)
    keys = [k async for k in box.components.storage.replay_guard._redis.scan_iter(match="*:signin:*")]  # type: ignore[union-attr]
    assert keys == []  # every ticket was taken by its callback


# -- attacks, over HTTP -----------------------------------------------------------------------------
async def post_answer(box: Sandbox, answer: dict[str, str]) -> tuple[int, str, Mapping[str, str]]:
    async with box.session.post(box.base_url + CALLBACK_PATH, data=answer) as response:
        return response.status, await response.text(), dict(response.headers)


async def post_confirmation(box: Sandbox, page: str, decision: str = "approve") -> tuple[int, str]:
    """What the approver's click on the bot's page posts: the page's own token and the decision."""
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None, page
    async with box.session.post(
        box.base_url + CONFIRM_PATH, data={"token": html.unescape(token.group(1)), "decision": decision}
    ) as response:
        return response.status, await response.text()


async def pending_request(box: Sandbox, reason: str) -> tuple[str, str, str]:
    request, value, ts = await request_via_slack(box, f"rotate contoso.test --force -- {reason}")
    return request.id, value, ts


async def test_a_replayed_answer_counts_once(box: Sandbox) -> None:
    request_id, value, ts = await pending_request(box, "replay")
    link = await approve_for_link(box, "U0BOB", value, ts)
    kept = await SignInWalker(box.entra.ca_file).sign_in(link, "bob@contoso.test", deliver=False)
    assert kept.answer is not None
    status, page, headers = await post_answer(box, kept.answer)
    assert status == 200 and "Confirm your approval" in page and "Approval recorded" not in page
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    status, page = await post_confirmation(box, page)
    assert status == 200 and "Approval recorded" in page
    seen = len(ephemeral_bodies(box, "U0BOB"))
    status, page, _ = await post_answer(box, kept.answer)
    assert status == 400 and "already used" in page
    request = await wait_for_state(box, request_id, {RequestState.PENDING})
    assert len(request.approvals) == 1
    assert "was used again" in await next_ephemeral(box, "U0BOB", seen, "used again")  # its owner is told
    audit = await box.components.services.changes.store.audit(request_id)  # type: ignore[union-attr]
    assert any(e.event == "refused" and "used sign-in link" in e.detail for e in audit)


async def test_a_sign_in_approves_nothing_until_its_approver_confirms_on_a_page_naming_the_change(
    box: Sandbox, browsers: Any
) -> None:
    """A phished "please sign in again" link is a genuine Microsoft page: the sign-in alone records nothing,
    the bot's page names the change and its reason, and "This is not mine" declines it, audited."""
    request_id, value, ts = await pending_request(box, "phished <b>re-authenticate</b>")
    link = await approve_for_link(box, "U0BOB", value, ts)
    asked = await SignInWalker(box.entra.ca_file).sign_in(link, "bob@contoso.test", decision=None)
    assert asked.title.startswith("Confirm your approval")
    assert request_id in asked.text and "Rotate the Kerberos key (forced" in asked.text and "U0ALICE" in asked.text
    assert "phished <b>re-authenticate</b>" in asked.text  # the reason, as text
    assert (await wait_for_state(box, request_id, {RequestState.PENDING})).approvals == ()  # nothing yet
    link = await approve_for_link(box, "U0BOB", value, ts)
    page = await asyncio.to_thread(sign_in_in_browser, browsers(), link, "bob@contoso.test", "decline")
    assert "Nothing was approved" in page
    assert (await wait_for_state(box, request_id, {RequestState.PENDING})).approvals == ()
    audit = await box.components.services.changes.store.audit(request_id)  # type: ignore[union-attr]
    assert any(e.event == "refused" and "not theirs" in e.detail for e in audit)


async def test_a_confirmation_counts_once_and_a_forged_one_never(box: Sandbox) -> None:
    request_id, value, ts = await pending_request(box, "forged confirmation")
    status, page = await post_confirmation(box, '<input name="token" value="made-up">')
    assert status == 400 and "does not count" in page
    link = await approve_for_link(box, "U0BOB", value, ts)
    kept = await SignInWalker(box.entra.ca_file).sign_in(link, "bob@contoso.test", deliver=False)
    assert kept.answer is not None
    _status, asked, _ = await post_answer(box, kept.answer)
    assert (await post_confirmation(box, asked))[0] == 200
    status, page = await post_confirmation(box, asked)  # the same form again
    assert status == 400 and "does not count" in page
    assert len((await wait_for_state(box, request_id, {RequestState.PENDING})).approvals) == 1


async def test_an_answer_brought_to_another_requests_link_approves_neither(box: Sandbox) -> None:
    first_id, first_value, first_ts = await pending_request(box, "first")
    second_id, second_value, second_ts = await pending_request(box, "second")
    first_link = await approve_for_link(box, "U0BOB", first_value, first_ts)
    second_link = await approve_for_link(box, "U0BOB", second_value, second_ts)
    walker = SignInWalker(box.entra.ca_file)
    first = await walker.sign_in(first_link, "bob@contoso.test", deliver=False)
    second = await walker.sign_in(second_link, "bob@contoso.test", deliver=False)
    assert first.answer and second.answer
    # the second request's code under the first request's state: the PKCE verifier does not fit
    _status, page, _ = await post_answer(box, {**second.answer, "state": first.answer["state"]})
    assert "Approval not counted" in page and "made for another sign-in" in page
    for request_id in (first_id, second_id):
        assert (await wait_for_state(box, request_id, {RequestState.PENDING})).approvals == ()
    audit = await box.components.services.changes.store.audit(first_id)  # type: ignore[union-attr]
    assert any(e.event == "refused" and "verification failed" in e.detail for e in audit)


async def test_a_forwarded_link_does_not_approve_as_its_owner(box: Sandbox) -> None:
    request_id, value, ts = await pending_request(box, "forwarded")
    bobs_link = await approve_for_link(box, "U0BOB", value, ts)
    seen = len(ephemeral_bodies(box, "U0BOB"))
    landed = await SignInWalker(box.entra.ca_file).sign_in(bobs_link, "carol@contoso.test")  # Carol got the link
    assert "Approval not counted" in landed.text and "belongs to bob@contoso.test" in landed.text
    assert "was refused" in await next_ephemeral(box, "U0BOB", seen, "belongs to bob@contoso.test")
    assert (await wait_for_state(box, request_id, {RequestState.PENDING})).approvals == ()


async def test_no_mfa_and_a_stale_single_sign_on_are_refused(box: Sandbox) -> None:
    request_id, value, ts = await pending_request(box, "weak sign-ins")
    walker = SignInWalker(box.entra.ca_file)
    carol = box.entra.people.user("carol@contoso.test")
    assert carol is not None
    carol.mfa_registered = False
    landed = await walker.sign_in(await approve_for_link(box, "U0CAROL", value, ts), "carol@contoso.test")
    assert "did not use multi-factor authentication" in landed.text
    carol.mfa_registered = True
    # a tenant whose sessions answer with an older sign-in (single sign-on ignoring prompt=login and max_age)
    box.entra.people.auth_time_shift, box.entra.people.honour_prompt_login = 600, False
    walker = SignInWalker(box.entra.ca_file)  # another browser: no session yet
    landed = await walker.sign_in(await approve_for_link(box, "U0CAROL", value, ts), "carol@contoso.test")
    assert "more than 5 minutes ago" in landed.text
    landed = await walker.sign_in(await approve_for_link(box, "U0CAROL", value, ts), "carol@contoso.test")
    assert "more than 5 minutes ago" in landed.text  # the session answered at once, no page: still refused
    assert (await wait_for_state(box, request_id, {RequestState.PENDING})).approvals == ()


async def test_a_sign_in_outside_the_entra_group_and_on_a_decided_request_are_explained(box: Sandbox) -> None:
    request_id, value, ts = await pending_request(box, "decided")
    walker = SignInWalker(box.entra.ca_file)
    landed = await walker.sign_in(await approve_for_link(box, "U0DAVE", value, ts), "dave@contoso.test")
    assert "not a member of the Entra approver group" in landed.text
    link = await approve_for_link(box, "U0BOB", value, ts)
    assert (await box.command(f"cancel {request_id}", user_id="U0ALICE"))[0].status == 200
    await wait_for_state(box, request_id, {RequestState.CANCELLED})
    landed = await walker.sign_in(link, "bob@contoso.test")
    assert "Approval not counted" in landed.text and "already decided" in landed.text


async def test_a_callback_that_is_not_a_sign_in_gets_a_page_not_an_error(box: Sandbox) -> None:
    status, page, _ = await post_answer(box, {"state": "<script>alert(1)</script>", "code": "x"})
    assert status == 400 and "does not count" in page and "<script>" not in page
    async with box.session.get(box.base_url + CALLBACK_PATH) as response:
        assert response.status == 400 and "not one the bot is waiting for" in await response.text()


async def test_the_click_on_the_link_button_is_acknowledged_and_nothing_else(box: Sandbox) -> None:
    """Slack reports clicks on URL buttons too; an unanswered one shows the user a warning sign."""
    posted = len(box.slack.api_calls("chat.postEphemeral"))
    payload = block_actions_payload(
        user_id="U0BOB", action_id=SIGN_IN_LINK_ACTION, value="", channel_id="C0PLATFORM", message_ts="1.2"
    )
    payload["actions"][0].pop("value")
    payload["actions"][0]["url"] = "https://login.example/authorize"
    ack = await box.interact(payload)
    assert ack.status == 200
    await asyncio.sleep(0.3)
    assert len(box.slack.api_calls("chat.postEphemeral")) == posted
