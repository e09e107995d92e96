"""Tokens from the Microsoft identity platform (msal) and authorized HTTP calls to Entra services.

msal's confidential client keeps tokens in its in-memory cache: ``acquire_token_for_client``
goes to the network only when no valid token is cached. msal blocks, so it runs in a worker
thread. Errors become ``EntraError``s here; secrets and tokens never enter a message.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msal
import requests

from bot.domain.errors import EntraAuthError, EntraError, EntraForbidden, EntraThrottled, EntraUnavailable

# A Retry-After this short is waited out once; a longer one is reported to the user.
MAX_INLINE_RETRY_SECONDS = 2.0
_AADSTS_HINTS = {
    "7000215": "the client secret is wrong or expired; create a new one and update the configuration",
    "7000222": "the client secret has expired; create a new one",
    "700016": "the client_id is not registered in this tenant",
    "700027": "the certificate is not registered on the app, or the private key does not match",
    "90002": "the tenant_id does not exist",
    "50196": "the identity platform is busy; retry shortly",
}


def _describe_token_error(result: dict[str, Any]) -> EntraError:
    description = str(result.get("error_description") or "")
    code = next((str(c) for c in result.get("error_codes") or []), None)
    if code is None:
        match = re.search(r"AADSTS(\d+)", description)
        code = match.group(1) if match else None
    hint = _AADSTS_HINTS.get(code or "", "")
    text = (
        f"Entra ID refused the bot's sign-in ({result.get('error')}, AADSTS{code})"
        if code
        else (f"Entra ID refused the bot's sign-in ({result.get('error')})")
    )
    if code == "50196":
        return EntraUnavailable(text + f": {hint}.")
    return EntraAuthError(text + (f": {hint}." if hint else "."))


class _PinnedSession(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE override a session's ``verify``; pin it on every request."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("verify", self._verify)
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class EntraApp:
    """The app registration the bot signs in as, and where the identity platform is."""

    tenant_id: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"
    client_secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    thumbprint: str | None = None
    public_certificate_pem: str | None = None
    ca_file: Path | None = None
    timeout: float = 10.0

    def credential(self) -> str | dict[str, str]:
        if self.client_secret is not None:
            return self.client_secret
        if self.private_key_pem is not None and self.thumbprint is not None:
            cert = {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
            if self.public_certificate_pem:
                cert["public_certificate"] = self.public_certificate_pem
            return cert
        raise EntraAuthError("No Entra credential: give a client secret or a certificate with its thumbprint.")


class TokenProvider:
    """App-only tokens for one resource scope."""

    def __init__(self, app: EntraApp, scope: str) -> None:
        self._scopes = [scope]
        self._session = _PinnedSession(str(app.ca_file) if app.ca_file else True, app.timeout)
        self._app_args: dict[str, Any] = {
            "client_id": app.client_id,
            "client_credential": app.credential(),
            "authority": f"{app.authority_host.rstrip('/')}/{app.tenant_id}",
            "http_client": self._session,
            # Sovereign clouds and the stand-in are not in msal's list of Microsoft hosts.
            "instance_discovery": False,
        }
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self.token_requests = 0  # tokens that came from the identity platform, not the cache

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            # Created lazily: msal reads the OpenID configuration when it is built.
            self._app = msal.ConfidentialClientApplication(**self._app_args)
        return self._app

    def token_sync(self) -> str:
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=self._scopes)
            except requests.exceptions.SSLError as exc:
                raise EntraUnavailable(
                    "TLS to the Microsoft identity platform failed (certificate not trusted)."
                ) from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise EntraUnavailable("The Microsoft identity platform could not be reached.") from exc
            except ValueError as exc:  # msal: OIDC discovery failed (unknown tenant, bad authority)
                self._app = None
                match = re.search(r"AADSTS(\d+)", str(exc))
                code = match.group(1) if match else None
                raise EntraAuthError(
                    "Entra ID sign-in failed: "
                    + (
                        f"AADSTS{code}: {_AADSTS_HINTS.get(code, 'see the bot log')}."
                        if code
                        else "the authority could not be discovered; check authority_host and tenant_id."
                    )
                ) from exc
        if "access_token" not in result:
            raise _describe_token_error(result)
        if result.get("token_source") != "cache":
            self.token_requests += 1
        return str(result["access_token"])

    async def token(self) -> str:
        return await asyncio.to_thread(self.token_sync)

    def close(self) -> None:
        self._session.close()

    def invalidate(self) -> None:
        """Forget cached tokens (the service said ours expired or was revoked)."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()


class EntraHttp:
    """Authorized JSON calls with the retry rules every Entra adapter shares."""

    def __init__(self, app: EntraApp, *, scope: str, service: str) -> None:
        self.tokens = TokenProvider(app, scope)
        self._tokens = self.tokens
        self._service = service
        tls = ssl.create_default_context(cafile=str(app.ca_file)) if app.ca_file else True
        self._client = httpx.AsyncClient(verify=tls, timeout=app.timeout)
        self.requests = 0

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Returns the response for 2xx and 404; raises an ``EntraError`` otherwise."""
        refreshed = waited = False
        while True:
            token = await self._tokens.token()
            self.requests += 1
            try:
                response = await self._client.request(
                    method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
                )
            except httpx.TimeoutException as exc:
                raise EntraUnavailable(f"{self._service} did not answer in time.") from exc
            except httpx.TransportError as exc:
                raise EntraUnavailable(f"{self._service} could not be reached ({type(exc).__name__}).") from exc
            status = response.status_code
            if status < 300 or status == 404:
                return response
            if status == 401 and not refreshed:
                self._tokens.invalidate()  # expired or revoked: one fresh token, one retry
                refreshed = True
                continue
            retry_after = _retry_after(response)
            if (
                status in (429, 503)
                and not waited
                and retry_after is not None
                and retry_after <= MAX_INLINE_RETRY_SECONDS
            ):
                waited = True
                await asyncio.sleep(retry_after)
                continue
            raise self._error(response, retry_after)

    def _error(self, response: httpx.Response, retry_after: float | None) -> EntraError:
        status = response.status_code
        try:
            detail = str(response.json().get("error", {}).get("message", ""))
        except ValueError:
            detail = ""
        if status == 401:
            return EntraAuthError(f"{self._service} rejected the bot's token (401): {detail or 'unauthorized'}.")
        if status == 403:
            return EntraForbidden(
                f"{self._service} denied access (403): the app registration needs the application permissions "
                "AuditLog.Read.All and Organization.Read.All, with admin consent."
            )
        if status == 429:
            wait = f"retry in {retry_after:g} s" if retry_after is not None else "retry later"
            return EntraThrottled(
                f"{self._service} throttled the request (429); {wait}.", retry_after_seconds=retry_after
            )
        if status >= 500:
            return EntraUnavailable(f"{self._service} is unavailable ({status}); retry later.")
        return EntraError(f"{self._service} refused the request ({status}): {detail or 'bad request'}.")

    async def close(self) -> None:
        await self._client.aclose()
        self._tokens.close()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
