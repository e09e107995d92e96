"""Entra ID authentication to Redis, as Azure Managed Redis takes it: no password in REDIS_URL; the bot signs
in as its identity's object id with a token for https://redis.azure.com, from a service principal (msal
through the configured authority) or a managed identity (the host's endpoint), and the token is renewed in
the background before it lapses. Played on a real redis-server whose ACL takes each token the Entra
stand-in issues (as the Azure service validates them), with tokens that live four seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from kerberos_sandbox.entra_standin import EntraStandIn
from kerberos_sandbox.redis_server import PrivateRedis

from bot.adapters.entra.app import EntraApp
from bot.adapters.entra.redis_tokens import managed_identity, service_principal
from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Verdict
from bot.domain.errors import StoreUnavailable
from tests.contracts.test_approval_store import new_request

LIFETIME = 4  # seconds: renewed at 70 %


class TokenTakingRedis:
    """The Redis side of Azure's Entra ID authentication: each token issued for Redis becomes a password of
    its object id's user (and ``revoke`` takes one back)."""

    def __init__(self, server: PrivateRedis) -> None:
        self._admin: Any = redis.Redis(port=server.port, decode_responses=True)
        self.issued: list[tuple[str, str]] = []

    def take(self, audience: str, object_id: str, token: str) -> None:
        if audience == "https://redis.azure.com":
            self._admin.execute_command("ACL", "SETUSER", object_id, "on", f">{token}", "~*", "&*", "+@all")
            self.issued.append((object_id, token))

    def revoke(self, object_id: str, token: str) -> None:
        self._admin.execute_command("ACL", "SETUSER", object_id, f"<{token}")

    def close(self) -> None:
        self._admin.close()


def app_of(entra: EntraStandIn, secret: str | None = None) -> EntraApp:
    return EntraApp(
        tenant_id=entra.tenant_id,
        client_id=entra.client_id,
        authority_host=entra.url,
        client_secret=secret or entra.client_secret,
        ca_file=entra.ca_file,
    )


@pytest.fixture
async def entra() -> AsyncIterator[EntraStandIn]:
    async with EntraStandIn() as standin:
        standin.state.app_token_lifetime = LIFETIME
        yield standin


@pytest.fixture
def azure_redis(redis_server: PrivateRedis, entra: EntraStandIn) -> Iterator[TokenTakingRedis]:
    taking = TokenTakingRedis(redis_server)
    entra.state.on_app_token = taking.take
    yield taking
    entra.state.on_app_token = None
    taking.close()


async def test_a_service_principal_signs_in_as_its_object_id_and_its_token_is_renewed_before_it_lapses(
    redis_server: PrivateRedis, entra: EntraStandIn, azure_redis: TokenTakingRedis
) -> None:
    provider = service_principal(app_of(entra))
    client = connect(redis_server.url, credential_provider=provider)  # no password in the URL
    store = RedisApprovalStore(client, "kbot-entra")
    try:
        assert await client.acl_whoami() == entra.state.app_object_id
        request = new_request()
        await store.create(request)
        first = azure_redis.issued[0][1]
        for _ in range(100):  # renewed at 70 % of its four seconds
            if len(azure_redis.issued) > 1:
                break
            await asyncio.sleep(0.1)
        assert len(azure_redis.issued) > 1, "the token was not renewed"
        azure_redis.revoke(entra.state.app_object_id, first)  # the first token no longer signs in
        await client.connection_pool.disconnect()  # every connection from here on signs in anew
        assert (await store.approve(request.id, "U0BOB", datetime.now(UTC))).verdict == Verdict.APPROVED
        assert await client.acl_whoami() == entra.state.app_object_id
    finally:
        await store.close()
        await provider.aclose()


async def test_a_managed_identity_signs_in_through_the_hosts_endpoint(
    redis_server: PrivateRedis, entra: EntraStandIn, azure_redis: TokenTakingRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{entra.url}/msi/token")  # App Service's, as msal finds it
    monkeypatch.setenv("IDENTITY_HEADER", entra.state.managed_identity_header)
    provider = managed_identity(ca_file=entra.ca_file)
    client = connect(redis_server.url, credential_provider=provider)
    try:
        assert await client.acl_whoami() == entra.state.managed_identity_object_id
    finally:
        await client.aclose()
        await provider.aclose()


async def test_an_identity_entra_refuses_is_a_clear_store_error_not_a_crash(
    redis_server: PrivateRedis, entra: EntraStandIn, azure_redis: TokenTakingRedis
) -> None:
    provider = service_principal(app_of(entra, secret="not-the-secret"))
    store = RedisApprovalStore(connect(redis_server.url, credential_provider=provider), "kbot-entra")
    try:
        with pytest.raises(StoreUnavailable, match="Entra ID"):
            await store.create(new_request())
    finally:
        await store.close()
        await provider.aclose()
