"""Tokens from the Microsoft identity platform (msal) and authorized HTTP calls to Entra services.

msal's confidential client keeps tokens in its in-memory cache: ``acquire_token_for_client``
(msal >= 1.23) goes to the network only when no valid token is cached, and marks its answer
``token_source`` = ``identity_provider`` or ``cache``. msal blocks, so it runs in a worker
thread. Errors become ``EntraError``s here; secrets and tokens never enter a message or a log.

Two msal behaviours the error mapping relies on (msal 1.39, ``throttled_http_client.py``):
a 429 or 5xx answer of the token endpoint is replayed from msal's HTTP cache for its Retry-After
(5 s without one), so the bot cannot hammer a throttled identity platform; and a 5xx raises
``MsalServiceError`` instead of returning an error dict.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msal
import requests

from bot.adapters.threads import run_in
from bot.domain.errors import EntraAuthError, EntraError, EntraForbidden, EntraThrottled, EntraUnavailable

log = logging.getLogger(__name__)

# A Retry-After this short is waited out once; a longer one is reported to the user.
MAX_INLINE_RETRY_SECONDS = 2.0
# What an operator should check for the AADSTS codes a client-credentials sign-in meets.
_AADSTS_HINTS = {
    "7000215": "the client secret is wrong (or is the secret's ID, not its value); check or renew it",
    "7000222": "the client secret has expired; create a new one and update the configuration",
    "700016": "the client_id is not an app registered in this tenant; check client_id and tenant_id",
    "700027": "the certificate is not registered on the app, or the private key does not match it",
    "700021": "the certificate assertion names another app; check client_id",
    "700023": "the certificate assertion's audience is not this tenant's token endpoint",
    "7000112": "the app registration is disabled",
    "90002": "the tenant_id does not exist; check tenant_id and authority_host (sovereign cloud?)",
}


def _aadsts_code(*texts: object) -> str | None:
    for text in texts:
        match = re.search(r"AADSTS(\d+)", str(text or ""))
        if match:
            return match.group(1)
    return None


def _describe_token_error(result: dict[str, Any]) -> EntraError:
    code = next((str(c) for c in result.get("error_codes") or []), None) or _aadsts_code(
        result.get("error_description")
    )
    error = str(result.get("error") or "error")  # an OAuth error name, never a secret
    hint = _AADSTS_HINTS.get(code or "")
    head = (
        f"Entra ID refused the bot's sign-in ({error}, AADSTS{code})"
        if code
        else f"Entra ID refused the bot's sign-in ({error})"
    )
    if error == "temporarily_unavailable":
        return EntraUnavailable(f"{head}: the identity platform is temporarily unavailable; retry later.")
    return EntraAuthError(
        f"{head}: {hint}." if hint else f"{head}; look the code up at https://login.microsoftonline.com/error."
    )


class PinnedSession(requests.Session):
    """The HTTP client msal uses.

    ``verify`` is pinned per request because requests lets REQUESTS_CA_BUNDLE override a
    session-wide ``verify``. It also remembers the identity platform's last throttling answer,
    which msal's error dict does not carry (it has no headers).
    """

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout
        self.throttled_until: float | None = None  # time.monotonic() when a 429's Retry-After ends

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("verify", self._verify)
        kwargs.setdefault("timeout", self._timeout)
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            seconds = _parse_retry_after(response.headers.get("Retry-After"))
            self.throttled_until = time.monotonic() + (seconds if seconds is not None else 5.0)  # msal's default
        elif response.status_code < 400:
            self.throttled_until = None
        return response

    def throttle_remaining(self) -> float | None:
        if self.throttled_until is None or self.throttled_until <= time.monotonic():
            return None
        return self.throttled_until - time.monotonic()


@dataclass(frozen=True)
class EntraApp:
    """The app registration the bot signs in as, and where the identity platform is.

    Give ``client_secret``, or ``private_key_pem`` with ``thumbprint`` (SHA-1, hex, as the portal
    shows it) and optionally ``public_certificate_pem`` (then msal sends x5c, for subject-name/issuer
    authentication).
    """

    tenant_id: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"
    client_secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    thumbprint: str | None = None
    public_certificate_pem: str | None = None
    ca_file: Path | None = None
    timeout: float = 10.0
    # the client secret read anew from its source (a file, Azure Key Vault) when Entra refuses it as wrong or
    # expired: a secret rotated there is taken without a restart
    client_secret_again: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    def credential(self) -> str | dict[str, str]:
        if self.client_secret is not None:
            return self.client_secret
        if self.private_key_pem is not None and (self.thumbprint or self.public_certificate_pem):
            # With a thumbprint msal signs RS256 and names the key by x5t (SHA-1); with only the
            # public certificate it computes x5t#S256 and signs PS256. Either way it sends x5c
            # when the public certificate is given.
            cert = {"private_key": self.private_key_pem}
            if self.thumbprint:
                cert["thumbprint"] = self.thumbprint.replace(":", "").replace(" ", "")
            if self.public_certificate_pem:
                cert["public_certificate"] = self.public_certificate_pem
            return cert
        raise EntraAuthError(
            "No Entra credential: give a client secret, or a certificate's private key with its thumbprint "
            "or public certificate."
        )

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


class TokenProvider:
    """App-only tokens for one resource scope, from one msal client and its in-memory cache."""

    def __init__(self, app: EntraApp, scope: str) -> None:
        self._scopes = [scope]
        self._authority = app.authority
        self._session = PinnedSession(str(app.ca_file) if app.ca_file else True, app.timeout)
        self._app_args: dict[str, Any] = {
            "client_id": app.client_id,
            "client_credential": app.credential(),
            "authority": app.authority,
            "http_client": self._session,
            # Sovereign clouds and the stand-in are not in msal's list of Microsoft hosts; without
            # this msal would ask login.microsoftonline.com to vouch for them. The OpenID
            # discovery of the tenant still runs, so a wrong tenant_id fails early.
            "instance_discovery": False,
        }
        self._app: msal.ConfidentialClientApplication | None = None
        self._secret_again = app.client_secret_again if app.client_secret is not None else None
        self._lock = threading.Lock()
        self.token_requests = 0  # tokens that came from the identity platform, not the cache

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            # Created lazily, in the worker thread: msal fetches the OpenID configuration here.
            self._app = msal.ConfidentialClientApplication(**self._app_args)
        return self._app

    def token_sync(self) -> str:
        with self._lock:
            result = self._acquire()
            if self._secret_refused(result) and self._secret_again is not None:
                newer = self._secret_again()
                if newer != self._app_args["client_credential"]:
                    log.info("the client secret changed at its source; signing in with the new one")
                    self._app_args["client_credential"] = newer
                    self._app = None  # a new msal client with the new secret (its token cache starts empty)
                    result = self._acquire()
        if "access_token" not in result:
            error = self._throttled() or _describe_token_error(result)
            log.warning("entra token request refused: %s", error.user_message)
            raise error
        if result.get("token_source") != "cache":
            self.token_requests += 1
        return str(result["access_token"])

    @staticmethod
    def _secret_refused(result: dict[str, Any]) -> bool:
        """Entra said the client secret is wrong (7000215) or has expired (7000222)."""
        codes = {str(c) for c in result.get("error_codes") or []} | {_aadsts_code(result.get("error_description"))}
        return "access_token" not in result and bool(codes & {"7000215", "7000222"})

    def _acquire(self) -> dict[str, Any]:
        """msal's answer (a token, or the refusal as a dict); the transport's failures as ``EntraError``s."""
        try:
            result: dict[str, Any] = self._application().acquire_token_for_client(scopes=self._scopes)
        except requests.exceptions.SSLError as exc:
            raise EntraUnavailable(
                "TLS to the Microsoft identity platform failed (certificate not trusted); check ca_file."
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise EntraUnavailable("The Microsoft identity platform did not answer in time.") from exc
        except requests.exceptions.RequestException as exc:
            raise EntraUnavailable("The Microsoft identity platform could not be reached.") from exc
        except msal.exceptions.MsalServiceError as exc:  # 5xx from discovery or the token endpoint
            raise EntraUnavailable(
                "The Microsoft identity platform is unavailable (server error); retry later."
            ) from exc
        except json.JSONDecodeError as exc:  # an error page instead of OAuth's JSON (e.g. a bare 429)
            raise self._throttled() or EntraUnavailable(
                "The Microsoft identity platform answered with something that is not JSON; retry later."
            ) from exc
        except ValueError as exc:  # a throttled OpenID discovery surfaces as this too
            raise self._throttled() or self._setup_error(exc) from exc
        return result

    def _throttled(self) -> EntraThrottled | None:
        remaining = self._session.throttle_remaining()
        if remaining is None:
            return None
        seconds = float(math.ceil(remaining))
        return EntraThrottled(
            f"The Microsoft identity platform throttled the bot's sign-in (429); retry in {seconds:g} s.",
            retry_after_seconds=seconds,
        )

    def _setup_error(self, exc: ValueError) -> EntraError:
        """msal raises ValueError when the OpenID discovery of the authority fails (the 4xx body,
        with its AADSTS code, is in the chained exception) or when the credential is unusable."""
        text = str(exc)
        if "authority" not in text.lower():
            return EntraAuthError(
                "Entra ID sign-in could not start: the credential could not be used; "
                "check the certificate's private key and thumbprint."
            )
        code = _aadsts_code(text, exc.__context__)
        if code:
            hint = _AADSTS_HINTS.get(code, "look the code up at https://login.microsoftonline.com/error")
            return EntraAuthError(f"Entra ID sign-in failed (AADSTS{code}): {hint}.")
        return EntraAuthError(
            f"Entra ID sign-in failed: {self._authority} did not answer OpenID discovery; "
            "check authority_host and tenant_id."
        )

    async def token(self) -> str:
        return await run_in("entra", self.token_sync)

    def invalidate(self) -> None:
        """Forget cached tokens (the service said ours expired or was revoked)."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    def close(self) -> None:
        self._session.close()


class EntraHttp:
    """Authorized JSON calls with the retry rules every Entra adapter shares.

    One ``httpx.AsyncClient`` for all calls (connection reuse); one token provider.
    """

    def __init__(self, app: EntraApp, *, scope: str, service: str, forbidden: str | None = None) -> None:
        self.tokens = TokenProvider(app, scope)
        self._service = service
        self._forbidden = forbidden  # what a 403 means for this service, when it is not a Graph permission
        # httpx 0.28 wants an SSLContext, not a path, for a private CA.
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(app.ca_file)) if app.ca_file else True
        self._client = httpx.AsyncClient(verify=tls, timeout=app.timeout)
        self.requests = 0  # HTTP requests sent to the service, retries included

    async def request(self, method: str, url: str, *, permission: str | None = None, **kwargs: Any) -> httpx.Response:
        """Returns the response for 2xx and 404; raises an ``EntraError`` otherwise.

        ``permission`` names the application permission a 403 means is missing.
        """
        refreshed = waited = False
        while True:
            token = await self.tokens.token()
            self.requests += 1
            try:
                response = await self._client.request(
                    method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
                )
            except httpx.TimeoutException as exc:
                raise EntraUnavailable(f"{self._service} did not answer in time.") from exc
            except httpx.ConnectError as exc:
                if isinstance(exc.__context__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
                    raise EntraUnavailable(
                        f"TLS to {self._service} failed (certificate not trusted); check ca_file."
                    ) from exc
                raise EntraUnavailable(f"{self._service} could not be reached.") from exc
            except httpx.TransportError as exc:
                raise EntraUnavailable(f"{self._service} could not be reached ({type(exc).__name__}).") from exc
            status = response.status_code
            if status < 300 or status == 404:
                return response
            if status == 401 and not refreshed:
                # Expired or revoked before msal thought so: one fresh token, one retry.
                await run_in("entra", self.tokens.invalidate)
                refreshed = True
                continue
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            if (
                status in (429, 503)
                and not waited
                and retry_after is not None
                and retry_after <= MAX_INLINE_RETRY_SECONDS
            ):
                waited = True
                await asyncio.sleep(retry_after)
                continue
            error = self._error(response, retry_after, permission)
            log.warning("entra call failed: %s %s -> %s", method, httpx.URL(url).path, status)
            raise error

    def _error(self, response: httpx.Response, retry_after: float | None, permission: str | None) -> EntraError:
        status = response.status_code
        try:
            detail = str(response.json().get("error", {}).get("message", ""))[:200]
        except (ValueError, AttributeError):
            detail = ""
        if status == 401:
            return EntraAuthError(f"{self._service} rejected the bot's token (401): {detail or 'unauthorized'}.")
        if status == 403 and self._forbidden is not None:
            return EntraForbidden(f"{self._service} denied access (403): {self._forbidden}.")
        if status == 403:
            needed = permission or "AuditLog.Read.All and Organization.Read.All"
            return EntraForbidden(
                f"{self._service} denied access (403): the app registration needs the application permission "
                f"{needed}, with admin consent."
            )
        wait = f"retry in {retry_after:g} s" if retry_after is not None else "retry later"
        if status == 429:
            return EntraThrottled(
                f"{self._service} throttled the request (429); {wait}.", retry_after_seconds=retry_after
            )
        if status >= 500:
            return EntraUnavailable(f"{self._service} is unavailable ({status}); {wait}.")
        return EntraError(f"{self._service} refused the request ({status}): {detail or 'bad request'}.")

    async def close(self) -> None:
        await self._client.aclose()
        self.tokens.close()


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, math.ceil((when - datetime.now(UTC)).total_seconds()))
