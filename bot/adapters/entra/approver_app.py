"""What both sign-ins of approvers share (device code, ``entra_device_code``; browser,
``entra_auth_code``): the approvers' msal app, built once with a token cache that keeps nothing, the
ID token check, and the mapping of msal's failures.

msal (>= 1.38) no longer validates ID tokens, so the audience, the issuer (from the tenant's OpenID
discovery) and the lifetime are checked here; the signature need not be checked because the token
comes straight from the token endpoint over TLS that the bot validated (OpenID Connect Core 3.1.3.7,
rule 6).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import msal
import requests

from bot.adapters.entra.app import PinnedSession
from bot.domain.errors import EntraAuthError, EntraError, EntraUnavailable

CLOCK_SKEW_SECONDS = 120


class NoTokenCache(msal.TokenCache):  # type: ignore[misc]
    """Keeps nothing: the approver's tokens are used once, for the check, and never stored."""

    def add(self, event: Any, **kwargs: Any) -> None:
        return None


def transport_error(exc: Exception) -> EntraError:
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
        "The approvers' sign-in could not start: check approvals.verification.client_id, entra.tenant_id "
        "and entra.authority_host."
    )


def refusal(result: Mapping[str, Any]) -> EntraError:
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


class ApproverApp:
    """The approvers' app registration in msal: a public client, or (``client_secret``) a confidential one."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str | None = None,
        authority_host: str = "https://login.microsoftonline.com",
        scopes: tuple[str, ...] = ("User.Read",),
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._scopes = list(scopes)
        self._session = PinnedSession(str(ca_file) if ca_file else True, timeout)
        self._app: msal.ClientApplication | None = None
        self._lock = threading.Lock()

    def application(self) -> msal.ClientApplication:
        with self._lock:
            if self._app is None:
                # In a worker thread: msal fetches the tenant's OpenID configuration here.
                common: dict[str, Any] = {
                    "authority": self._authority,
                    "http_client": self._session,
                    "instance_discovery": False,  # sovereign clouds and the stand-in are not in msal's list
                    "token_cache": NoTokenCache(),
                }
                if self._secret:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id, client_credential=self._secret, **common
                    )
                else:
                    self._app = msal.PublicClientApplication(self.client_id, **common)
            return self._app

    def validate_id_token(self, id_token: str) -> dict[str, Any]:
        """The claims of an ID token from this app's token endpoint: audience, issuer and lifetime checked."""
        return validate_id_token(self.application(), self.client_id, id_token)

    def cached_tokens(self) -> int:
        """Tokens msal holds (always 0: tests check that no token is kept)."""
        if self._app is None:
            return 0
        cache = self._app.token_cache
        return sum(len(list(cache.search(kind))) for kind in ("AccessToken", "RefreshToken", "IdToken"))

    def close(self) -> None:
        self._session.close()
