"""Device-code sign-in of approvers with msal's public client (``DeviceCodeSignIn`` port).

The bot needs only the ID token of the sign-in, once: msal gets a cache that keeps nothing, so no
access, refresh or ID token outlives the check. msal (>= 1.38) no longer validates ID tokens, so
this module checks the audience, the issuer (from the tenant's OpenID discovery) and the lifetime;
the signature need not be checked because the token comes straight from the token endpoint over
TLS that the bot validated (OpenID Connect Core 3.1.3.7, rule 6).

msal polls in a blocking loop; it runs in a worker thread and is stopped through the flow's
``exit_condition`` when the sign-in is called off.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import msal
import requests

from bot.adapters.entra_auth import _PinnedSession
from bot.adapters.threads import run_in
from bot.domain.errors import EntraAuthError, EntraError, EntraUnavailable
from bot.domain.verification import DeviceCodePrompt, SignInAbandoned

CLOCK_SKEW_SECONDS = 120
_ABANDONED = {
    "expired_token": "the sign-in code expired before the sign-in was completed",
    "code_expired": "the sign-in code expired before the sign-in was completed",
    "authorization_declined": "the sign-in was declined",
    "access_denied": "the sign-in was declined or blocked (for example by Conditional Access)",
    "bad_verification_code": "the sign-in code was not recognised",
}


class _NoTokenCache(msal.TokenCache):  # type: ignore[misc]
    """Keeps nothing: the approver's tokens are used once, for the check, and never stored."""

    def add(self, event: Any, **kwargs: Any) -> None:
        return None


def _transport_error(exc: Exception) -> EntraError:
    if isinstance(exc, requests.exceptions.SSLError):
        return EntraUnavailable(
            "TLS to the Microsoft identity platform failed (certificate not trusted); check ca_file."
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return EntraUnavailable("The Microsoft identity platform did not answer in time.")
    if isinstance(exc, requests.exceptions.RequestException):
        return EntraUnavailable("The Microsoft identity platform could not be reached.")
    if isinstance(exc, msal.exceptions.MsalServiceError):
        return EntraUnavailable("The Microsoft identity platform is unavailable (server error); retry later.")
    if isinstance(exc, json.JSONDecodeError):
        return EntraUnavailable("The Microsoft identity platform answered with something that is not JSON.")
    return EntraAuthError(
        "The device-code sign-in could not start: check approvals.verification.client_id, entra.tenant_id "
        "and entra.authority_host."
    )


def _refusal(result: Mapping[str, Any]) -> EntraError:
    error = str(result.get("error") or "error")
    codes = ", ".join(f"AADSTS{c}" for c in result.get("error_codes") or [])
    hint = {
        "unauthorized_client": "the app registration is not a public client, or device-code flow is not allowed "
        "('Allow public client flows' must be on)",
        "invalid_client": "the app registration is not a public client ('Allow public client flows' must be on)",
        "invalid_scope": "the requested scopes are not allowed for this app",
    }.get(error, "look the code up at https://login.microsoftonline.com/error")
    return EntraAuthError(f"Entra ID refused the approver sign-in ({error}{', ' + codes if codes else ''}): {hint}.")


def validate_id_token(app: msal.ClientApplication, client_id: str, id_token: str) -> dict[str, Any]:
    """The claims of an ID token from ``app``'s token endpoint: audience, issuer and lifetime checked."""
    issuer = str(app.client.configuration.get("issuer") or "")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            options={
                "verify_signature": False,  # straight from the token endpoint over validated TLS
                "verify_aud": True,
                "verify_iss": bool(issuer),
                "verify_exp": True,
                "verify_nbf": True,
                "require": ["aud", "iss", "exp", "tid", "oid"],
            },
            audience=client_id,
            issuer=issuer or None,
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise EntraAuthError(f"The approver's ID token is not valid for this bot ({exc}).") from exc
    return claims


def token_count(app: msal.ClientApplication | None) -> int:
    """Tokens msal holds (always 0: tests check that no token is kept)."""
    if app is None:
        return 0
    cache = app.token_cache
    return sum(len(list(cache.search(kind))) for kind in ("AccessToken", "RefreshToken", "IdToken"))


class MsalDeviceCodeSession:
    """One sign-in: its prompt, and its ID token's claims once the user has signed in."""

    def __init__(self, owner: MsalDeviceCodeSignIn, flow: dict[str, Any]) -> None:
        self._owner = owner
        self._flow = flow
        self._cancelled = threading.Event()
        expires = datetime.fromtimestamp(float(flow["expires_at"]), UTC)
        self.prompt = DeviceCodePrompt(
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or flow.get("verification_url") or ""),
            expires_at=expires,
            message=str(flow.get("message") or ""),
        )

    def cancel(self) -> None:
        self._cancelled.set()

    def _exit(self, flow: Mapping[str, Any]) -> bool:
        return self._cancelled.is_set() or float(flow.get("expires_at", 0)) < time.time()

    def _poll(self) -> dict[str, Any]:
        app = self._owner.application()
        try:
            result: dict[str, Any] = app.acquire_token_by_device_flow(self._flow, exit_condition=self._exit)
        except (requests.exceptions.RequestException, msal.exceptions.MsalServiceError, ValueError) as exc:
            raise _transport_error(exc) from exc
        return result

    async def claims(self) -> Mapping[str, Any]:
        try:
            result = await run_in("sign-in", self._poll)
        except asyncio.CancelledError:
            self.cancel()  # the polling thread stops within a second
            raise
        if self._cancelled.is_set():
            raise SignInAbandoned("the sign-in was called off")
        error = result.get("error")
        if error in ("authorization_pending", "slow_down"):  # polling stopped at the code's expiry
            raise SignInAbandoned(_ABANDONED["expired_token"])
        if error in _ABANDONED:
            raise SignInAbandoned(_ABANDONED[str(error)])
        if error or "id_token" not in result:
            raise _refusal(result) if error else EntraAuthError("Entra ID returned no ID token for the sign-in.")
        return self._owner.validate_id_token(str(result["id_token"]))


class MsalDeviceCodeSignIn:
    """``DeviceCodeSignIn`` with a public client app registration (device-code flow allowed)."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        authority_host: str = "https://login.microsoftonline.com",
        scopes: tuple[str, ...] = ("User.Read",),
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._scopes = list(scopes)
        self._session = _PinnedSession(str(ca_file) if ca_file else True, timeout)
        self._app: msal.PublicClientApplication | None = None
        self._lock = threading.Lock()

    def application(self) -> msal.PublicClientApplication:
        with self._lock:
            if self._app is None:
                # In a worker thread: msal fetches the tenant's OpenID configuration here.
                self._app = msal.PublicClientApplication(
                    self.client_id,
                    authority=self._authority,
                    http_client=self._session,
                    instance_discovery=False,  # sovereign clouds and the stand-in are not in msal's list
                    token_cache=_NoTokenCache(),
                )
            return self._app

    def _initiate(self) -> dict[str, Any]:
        try:
            flow: dict[str, Any] = self.application().initiate_device_flow(scopes=self._scopes)
        except (requests.exceptions.RequestException, msal.exceptions.MsalServiceError, ValueError) as exc:
            raise _transport_error(exc) from exc
        if "user_code" not in flow:
            raise _refusal(flow)
        return flow

    async def start(self) -> MsalDeviceCodeSession:
        return MsalDeviceCodeSession(self, await run_in("sign-in", self._initiate))

    def validate_id_token(self, id_token: str) -> dict[str, Any]:
        return validate_id_token(self.application(), self.client_id, id_token)

    def cached_tokens(self) -> int:
        return token_count(self._app)

    def close(self) -> None:
        self._session.close()
