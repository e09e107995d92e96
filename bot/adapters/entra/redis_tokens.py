"""Entra ID authentication to Azure Managed Redis: no password in REDIS_URL; the client signs in with a
token for ``https://redis.azure.com`` as the identity's object id, renewed in the background at 70 % of
its life, and every open connection re-authenticates with the new one (redis-py's streaming credential
provider contract: ``on_next`` is how its connection pools hear of a new token).

The token requests run in a worker thread: the event loop never waits on the identity platform. (The
redis-entraid package implements the same contract, but its asyncio path asks for tokens on the event
loop's own thread, holding every click and reply for as long as a token request takes.) A service
principal's tokens come through the bot's own ``TokenProvider`` (the configured authority, so sovereign
clouds and the stand-in; its CA; its error mapping); a managed identity's (system- or user-assigned) from
msal's managed-identity client, through the platform's endpoint msal finds itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msal
import requests
from redis.auth.err import RequestTokenErr
from redis.auth.token import JWToken
from redis.credentials import StreamingCredentialProvider

from bot.adapters.entra.app import EntraApp, PinnedSession, TokenProvider
from bot.domain.errors import KerberosBotError
from bot.tasks import stop_task

REDIS_SCOPE = "https://redis.azure.com/.default"
RENEW_AT = 0.7  # of a token's life
RETRY_EVERY = 5.0  # seconds between tries when a renewal fails (the current token still works until it lapses)

log = logging.getLogger(__name__)


class EntraRedisCredentials(StreamingCredentialProvider):
    """The identity's object id and a current token, renewed in the background."""

    def __init__(self, acquire: Callable[[], str], close: Callable[[], None] = lambda: None) -> None:
        self._acquire = acquire  # blocking: runs in a worker thread
        self._close = close  # the HTTP session the tokens come through
        self._token: JWToken | None = None
        self._on_next: Callable[[Any], Any] | None = None
        self._on_error: Callable[[Exception], Any] | None = None
        self._renewal: asyncio.Task[None] | None = None

    def on_next(self, callback: Callable[[Any], Any]) -> None:
        self._on_next = callback

    def on_error(self, callback: Callable[[Exception], Any]) -> None:
        self._on_error = callback

    def is_streaming(self) -> bool:
        return self._renewal is not None and not self._renewal.done()

    def get_credentials(self) -> tuple[str, str]:
        if self._token is None or self._token.is_expired():
            self._token = self._fetch_now()
        return self._token.try_get("oid"), self._token.get_value()

    async def get_credentials_async(self) -> tuple[str, str]:
        if self._token is None or self._token.is_expired():
            self._token = await asyncio.to_thread(self._fetch_now)
        if not self.is_streaming():
            self._renewal = asyncio.get_running_loop().create_task(self._renew(), name="redis-entra-token")
        return self._token.try_get("oid"), self._token.get_value()

    async def aclose(self) -> None:
        """Stop renewing (the process is closing its Redis client)."""
        if self._renewal is not None:
            await stop_task(self._renewal, "the Entra token renewal for Redis")
            self._renewal = None
        self._close()

    def _fetch_now(self) -> JWToken:
        try:
            return JWToken(self._acquire())
        except KerberosBotError as exc:
            raise RequestTokenErr(f"no token for Redis from Entra ID: {exc.user_message}") from exc  # type: ignore[no-untyped-call]
        except (requests.RequestException, ValueError) as exc:
            raise RequestTokenErr(f"no token for Redis from Entra ID: {exc}") from exc  # type: ignore[no-untyped-call]

    async def _renew(self) -> None:
        while True:
            token = self._token
            assert token is not None
            life = (token.get_expires_at_ms() - token.get_received_at_ms()) / 1000
            due = token.get_received_at_ms() / 1000 + life * RENEW_AT
            await asyncio.sleep(max(1.0, due - time.time()))
            try:
                self._token = await asyncio.to_thread(self._fetch_now)
            except RequestTokenErr as exc:
                log.warning("could not renew the Entra ID token for Redis: %s; trying again", exc)
                await self._tell(self._on_error, exc)
                await asyncio.sleep(RETRY_EVERY)
                continue
            await self._tell(self._on_next, self._token)

    @staticmethod
    async def _tell(callback: Callable[[Any], Any] | None, value: Any) -> None:
        if callback is None:
            return
        with contextlib.suppress(Exception):  # a pool that cannot re-authenticate reconnects with the new token
            outcome = callback(value)
            if inspect.isawaitable(outcome):
                await outcome


def service_principal(app: EntraApp, scope: str = REDIS_SCOPE) -> EntraRedisCredentials:
    tokens = TokenProvider(app, scope)
    return EntraRedisCredentials(tokens.token_sync, tokens.close)


def managed_identity(
    *, client_id: str | None = None, scope: str = REDIS_SCOPE, ca_file: Path | None = None
) -> EntraRedisCredentials:
    """A user-assigned managed identity (``client_id``), or the system-assigned one."""
    identity: Any = (
        msal.UserAssignedManagedIdentity(client_id=client_id) if client_id else msal.SystemAssignedManagedIdentity()
    )
    session = PinnedSession(str(ca_file) if ca_file is not None else True, timeout=10.0)
    client = msal.ManagedIdentityClient(identity, http_client=session)
    resource = scope.removesuffix("/.default")

    def acquire() -> str:
        answer = client.acquire_token_for_client(resource=resource)
        if "access_token" not in answer:
            raise ValueError(str(answer.get("error_description") or answer.get("error") or answer))
        return str(answer["access_token"])

    return EntraRedisCredentials(acquire, session.close)
