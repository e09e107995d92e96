"""Approver sign-in with msal's device-code flow against the Entra stand-in, and group membership
through Graph's checkMemberGroups: the real msal, real HTTPS, the stand-in's OAuth answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kerberos_sandbox.entra_standin import EntraStandIn

from bot.adapters.entra.device_code import MsalDeviceCodeSignIn
from bot.adapters.entra.graph import GraphEntraDirectory
from bot.domain.errors import EntraAuthError, EntraForbidden
from bot.domain.verification import SignInAbandoned

pytest_plugins = ["tests.support.entra"]


@pytest.fixture
async def sign_in(entra_standin: EntraStandIn) -> AsyncIterator[MsalDeviceCodeSignIn]:
    entra_standin.people.device_code_interval = 1
    entra_standin.people.device_code_lifetime = 30
    signer = MsalDeviceCodeSignIn(
        tenant_id=entra_standin.tenant_id,
        client_id=entra_standin.public_client_id,
        authority_host=entra_standin.url,
        ca_file=entra_standin.ca_file,
        timeout=2.0,
    )
    yield signer
    signer.close()


async def _when_polled(standin: EntraStandIn, user_code: str) -> None:
    """Wait until msal has polled once, as a user would take a moment to type the code."""
    grant = standin.people.grant_by_user_code(user_code)
    for _ in range(100):
        if grant.polls:
            return
        await asyncio.sleep(0.05)


async def test_a_completed_sign_in_gives_validated_claims_and_keeps_no_token(
    entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn
) -> None:
    alice = entra_standin.people.add_user("alice@contoso.test")
    session = await sign_in.start()
    assert session.prompt.user_code in entra_standin.people.pending_user_codes()
    assert session.prompt.verification_uri.endswith("/devicelogin")
    waiting = asyncio.create_task(session.claims())
    await _when_polled(entra_standin, session.prompt.user_code)
    assert not waiting.done()  # authorization_pending: msal keeps polling
    entra_standin.people.sign_in(session.prompt.user_code, "alice@contoso.test", mfa=True)
    claims = await asyncio.wait_for(waiting, 10)
    assert claims["oid"] == alice.object_id
    assert claims["tid"] == entra_standin.tenant_id
    assert claims["preferred_username"] == "alice@contoso.test"
    assert "mfa" in claims["amr"]
    assert claims["aud"] == entra_standin.public_client_id
    assert sign_in.cached_tokens() == 0


async def test_a_sign_in_without_mfa_says_so_in_amr(entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn) -> None:
    entra_standin.people.add_user("bob@contoso.test")
    session = await sign_in.start()
    entra_standin.people.sign_in(session.prompt.user_code, "bob@contoso.test", mfa=False)
    claims = await asyncio.wait_for(session.claims(), 10)
    assert claims["amr"] == ["pwd"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [("access_denied", "declined or blocked"), ("authorization_declined", "declined")],
)
async def test_a_declined_sign_in_is_abandoned(
    entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn, error: str, reason: str
) -> None:
    session = await sign_in.start()
    entra_standin.people.decline(session.prompt.user_code, error)
    with pytest.raises(SignInAbandoned, match=reason):
        await asyncio.wait_for(session.claims(), 10)


async def test_an_expired_code_is_abandoned(entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn) -> None:
    session = await sign_in.start()
    entra_standin.people.expire(session.prompt.user_code)
    with pytest.raises(SignInAbandoned, match="expired"):
        await asyncio.wait_for(session.claims(), 10)


async def test_a_cancelled_sign_in_stops_polling(entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn) -> None:
    session = await sign_in.start()
    waiting = asyncio.create_task(session.claims())
    await _when_polled(entra_standin, session.prompt.user_code)
    session.cancel()
    with pytest.raises(SignInAbandoned, match="called off"):
        await asyncio.wait_for(waiting, 5)


async def test_the_bots_confidential_app_cannot_start_a_device_code_sign_in(entra_standin: EntraStandIn) -> None:
    signer = MsalDeviceCodeSignIn(
        tenant_id=entra_standin.tenant_id,
        client_id=entra_standin.client_id,
        authority_host=entra_standin.url,
        ca_file=entra_standin.ca_file,
    )
    try:
        with pytest.raises(EntraAuthError, match="public client"):
            await signer.start()
    finally:
        signer.close()


async def test_an_id_token_for_another_app_is_rejected(
    entra_standin: EntraStandIn, sign_in: MsalDeviceCodeSignIn
) -> None:
    entra_standin.people.add_user("alice@contoso.test")
    session = await sign_in.start()
    entra_standin.people.sign_in(session.prompt.user_code, "alice@contoso.test")
    sign_in.client_id = "another-app"  # as if the token were minted for someone else
    with pytest.raises(EntraAuthError, match="not valid for this bot"):
        await asyncio.wait_for(session.claims(), 10)


async def test_group_membership_is_transitive(entra_standin: EntraStandIn, entra_graph: GraphEntraDirectory) -> None:
    people = entra_standin.people
    alice = people.add_user("alice@contoso.test")
    carol = people.add_user("carol@contoso.test")
    mallory = people.add_user("mallory@contoso.test")
    admins = people.add_group("Tier0 admins", [alice.object_id])
    approvers = people.add_group("Kerberos approvers", [admins, carol.object_id])
    assert await entra_graph.is_transitive_member(alice.object_id, approvers)  # through the nested group
    assert await entra_graph.is_transitive_member(carol.object_id, approvers)
    assert not await entra_graph.is_transitive_member(mallory.object_id, approvers)
    assert not await entra_graph.is_transitive_member("00000000-0000-0000-0000-000000000000", approvers)


async def test_group_membership_without_the_permission_names_it(
    entra_standin: EntraStandIn, entra_graph: GraphEntraDirectory
) -> None:
    alice = entra_standin.people.add_user("alice@contoso.test")
    group = entra_standin.people.add_group("Kerberos approvers", [alice.object_id])
    entra_standin.state.roles = ("AuditLog.Read.All", "Organization.Read.All")
    with pytest.raises(EntraForbidden, match="GroupMember.Read.All"):
        await entra_graph.is_transitive_member(alice.object_id, group)
