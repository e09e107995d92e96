"""Approver sign-in with msal's authorization code flow (PKCE, form_post) against the Entra stand-in:
the real msal, real HTTPS, the stand-in's sign-in pages walked as a browser would, and the answer
posted to a local redirect URI. What a browser test cannot reach is tried here: a code redeemed
twice, an answer brought to another sign-in, a wrong PKCE verifier, a confidential client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from kerberos_sandbox.entra_standin import EntraStandIn
from kerberos_sandbox.sign_in_client import SignInWalker

from bot.adapters.entra.auth_code import MsalBrowserSignIn
from bot.domain.errors import EntraAuthError
from bot.domain.verification import BrowserSignInStart, SignInAbandoned, SignInRefused
from bot.entrypoints.web import start_site

pytest_plugins = ["tests.support.entra"]


class Callback:
    """The bot's redirect URI, reduced to recording what the browser posts to it."""

    def __init__(self) -> None:
        self.answers: list[dict[str, str]] = []
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        self.answers.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text="<title>received</title>received", content_type="text/html")


@pytest.fixture
async def callback(entra_standin: EntraStandIn) -> AsyncIterator[Callback]:
    recorder = Callback()
    app = web.Application()
    app.router.add_post("/auth/callback", recorder.receive)
    runner, port = await start_site(app)
    recorder.url = f"http://127.0.0.1:{port}/auth/callback"
    entra_standin.people.redirect_uris.add(recorder.url)
    yield recorder
    await runner.cleanup()


def browser_sign_in(standin: EntraStandIn, secret: str | None = None) -> MsalBrowserSignIn:
    return MsalBrowserSignIn(
        tenant_id=standin.tenant_id,
        client_id=standin.public_client_id,
        client_secret=secret,
        authority_host=standin.url,
        ca_file=standin.ca_file,
        timeout=5.0,
    )


@pytest.fixture
async def sign_in(entra_standin: EntraStandIn) -> AsyncIterator[MsalBrowserSignIn]:
    adapter = browser_sign_in(entra_standin)
    yield adapter
    adapter.close()


async def signed_in(
    standin: EntraStandIn, adapter: MsalBrowserSignIn, callback: Callback, upn: str, **kwargs: Any
) -> tuple[BrowserSignInStart, dict[str, str]]:
    started = await adapter.start(
        redirect_uri=callback.url, login_hint=upn, max_age=timedelta(minutes=5), auth_context=kwargs.pop("ctx", None)
    )
    landed = await SignInWalker(standin.ca_file).sign_in(started.auth_uri, upn, **kwargs)
    assert landed.title == "received", landed.text
    return started, callback.answers[-1]


async def test_a_sign_in_gives_validated_claims_for_its_flow_and_keeps_no_token(
    entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback
) -> None:
    alice = entra_standin.people.add_user("alice@contoso.test")
    started, answer = await signed_in(entra_standin, sign_in, callback, "alice@contoso.test")
    assert "code_verifier" not in started.auth_uri and "code_challenge=" in started.auth_uri
    assert "prompt=login" in started.auth_uri and "max_age=300" in started.auth_uri
    assert "response_mode=form_post" in started.auth_uri and "login_hint=alice%40contoso.test" in started.auth_uri
    assert answer["state"] == started.state and answer["code"]
    claims = await sign_in.redeem(started.flow, answer)
    assert claims["oid"] == alice.object_id and claims["aud"] == entra_standin.public_client_id
    assert "mfa" in claims["amr"] and abs(claims["auth_time"] - time.time()) < 60
    assert sign_in.cached_tokens() == 0


async def test_a_code_counts_once(entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    started, answer = await signed_in(entra_standin, sign_in, callback, "bob@contoso.test")
    await sign_in.redeem(started.flow, answer)
    with pytest.raises(SignInRefused, match=r"already used.*\(AADSTS54005\)"):
        await sign_in.redeem(started.flow, answer)


async def test_an_answer_brought_to_another_sign_in_is_refused(
    entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback
) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    first, _ = await signed_in(entra_standin, sign_in, callback, "bob@contoso.test")
    _second, answer = await signed_in(entra_standin, sign_in, callback, "bob@contoso.test")
    # the second sign-in's code with the first link's state: its PKCE verifier does not fit the code
    with pytest.raises(SignInRefused, match="AADSTS501481"):
        await sign_in.redeem(first.flow, {**answer, "state": first.state})
    # and an answer whose state is not the flow's is refused before anything is sent
    with pytest.raises(SignInRefused, match="does not belong"):
        await sign_in.redeem(first.flow, answer)


async def test_a_cancelled_sign_in_is_abandoned(
    entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback
) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    started, answer = await signed_in(entra_standin, sign_in, callback, "bob@contoso.test", cancel=True)
    assert answer["error"] == "access_denied"
    with pytest.raises(SignInAbandoned, match="cancelled"):
        await sign_in.redeem(started.flow, answer)


async def test_an_authentication_context_is_asked_for_and_comes_back_in_the_id_token(
    entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback
) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    started, answer = await signed_in(entra_standin, sign_in, callback, "bob@contoso.test", ctx="c1")
    assert "claims=" in started.auth_uri
    assert (await sign_in.redeem(started.flow, answer))["acrs"] == ["c1"]


async def test_single_sign_on_that_ignores_prompt_login_brings_the_old_auth_time(
    entra_standin: EntraStandIn, sign_in: MsalBrowserSignIn, callback: Callback
) -> None:
    """What check_claims must catch: a tenant whose session answers without a new sign-in."""
    entra_standin.people.add_user("bob@contoso.test")
    walker = SignInWalker(entra_standin.ca_file)
    entra_standin.people.auth_time_shift = 900  # the session's sign-in was 15 minutes ago
    started = await sign_in.start(
        redirect_uri=callback.url, login_hint="bob@contoso.test", max_age=timedelta(minutes=5), auth_context=None
    )
    await walker.sign_in(started.auth_uri, "bob@contoso.test")
    await sign_in.redeem(started.flow, callback.answers[-1])
    entra_standin.people.honour_prompt_login = False
    again = await sign_in.start(
        redirect_uri=callback.url, login_hint="bob@contoso.test", max_age=timedelta(minutes=5), auth_context=None
    )
    landed = await walker.sign_in(again.auth_uri, "bob@contoso.test", password="never typed")
    assert landed.title == "received"  # no page at all: the session answered
    claims = await sign_in.redeem(again.flow, callback.answers[-1])
    assert time.time() - claims["auth_time"] > 800


async def test_a_confidential_approver_app_redeems_with_its_secret(
    entra_standin: EntraStandIn, callback: Callback
) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    entra_standin.state.public_client_secret = "s3cret-of-the-web-app"
    try:
        without = browser_sign_in(entra_standin)
        started, answer = await signed_in(entra_standin, without, callback, "bob@contoso.test")
        with pytest.raises(EntraAuthError, match="invalid_client"):
            await without.redeem(started.flow, answer)
        without.close()
        confidential = browser_sign_in(entra_standin, "s3cret-of-the-web-app")
        started, answer = await signed_in(entra_standin, confidential, callback, "bob@contoso.test")
        assert (await confidential.redeem(started.flow, answer))["preferred_username"] == "bob@contoso.test"
        confidential.close()
    finally:
        entra_standin.state.public_client_secret = None
