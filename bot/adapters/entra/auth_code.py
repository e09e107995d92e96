"""Browser sign-in of approvers: msal's authorization code flow with PKCE (``BrowserSignIn`` port).

The approvers' app registration is a public client (redirect URI on the "Mobile and desktop
applications" platform) or, with ``client_secret``, a confidential web app. Every sign-in demands a
fresh authentication: ``prompt=login`` and ``max_age``; ``login_hint`` names the expected user; an
authentication context is asked for with a ``claims`` request. msal checks ``state`` and the
nonce when the code is redeemed; this module checks the audience, the issuer and the lifetime of
the ID token (the rest is ``bot.domain.verification.check_claims``). As with the device code, msal
gets a cache that keeps nothing: no token outlives the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import msal
import requests

from bot.adapters.entra.approver_app import ApproverApp, refusal, transport_error
from bot.adapters.threads import run_in
from bot.domain.errors import EntraAuthError
from bot.domain.verification import BrowserSignInStart, SignInAbandoned, SignInRefused

# What the identity platform answers at the redirect URI when the user did not sign in
_DECLINED = {
    "access_denied": "the sign-in was cancelled, declined or blocked (for example by Conditional Access)",
    "consent_required": "the approvers' app needs consent before anyone can sign in to it",
    "interaction_required": "the sign-in needs an interaction the page could not complete",
    "login_required": "the sign-in did not complete",
}
# Refusals at the token endpoint that are about this code, not about the bot's set-up
_CODE_REFUSED = {
    "invalid_grant": "Entra ID refused the sign-in answer: its code was already used, has expired, or was made "
    "for another sign-in"
}


def auth_context_claims(context: str) -> str:
    """The ``claims`` request of an authentication context (asked for both tokens; the ID token's is checked)."""
    wanted = {"acrs": {"essential": True, "value": context}}
    return json.dumps({"id_token": wanted, "access_token": wanted}, separators=(",", ":"))


class MsalBrowserSignIn(ApproverApp):
    """``BrowserSignIn`` with the approvers' app registration (its redirect URI on the bot's listener)."""

    def _initiate(self, redirect_uri: str, login_hint: str, max_age: int, auth_context: str | None) -> dict[str, Any]:
        try:
            flow: dict[str, Any] = self.application().initiate_auth_code_flow(
                self._scopes,
                redirect_uri=redirect_uri,
                prompt="login",  # a fresh authentication, never a single sign-on session's
                login_hint=login_hint,
                claims_challenge=auth_context_claims(auth_context) if auth_context else None,
                response_mode="form_post",  # the code comes back in a POST body, never in a URL or history
            )
        except (requests.exceptions.RequestException, msal.exceptions.MsalServiceError, ValueError) as exc:
            raise transport_error(exc) from exc
        # max_age goes on the link, not to msal: msal would allow two more minutes than the
        # configured bound, which check_claims enforces exactly
        flow["auth_uri"] = f"{flow['auth_uri']}&{urlencode({'max_age': max_age})}"
        return flow

    async def start(
        self, *, redirect_uri: str, login_hint: str, max_age: timedelta, auth_context: str | None
    ) -> BrowserSignInStart:
        flow = await run_in(
            "sign-in", self._initiate, redirect_uri, login_hint, int(max_age.total_seconds()), auth_context
        )
        return BrowserSignInStart(auth_uri=str(flow["auth_uri"]), state=str(flow["state"]), flow=flow)

    def _redeem(self, flow: dict[str, Any], response: dict[str, str]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.application().acquire_token_by_auth_code_flow(flow, response)
        except ValueError as exc:  # state mismatch, or a response msal cannot use
            raise SignInRefused("the sign-in answer does not belong to this sign-in link") from exc
        except RuntimeError as exc:  # msal's nonce (and max_age) check of the ID token
            raise SignInRefused("the sign-in answer does not belong to this sign-in link (its nonce differs)") from exc
        except (requests.exceptions.RequestException, msal.exceptions.MsalServiceError) as exc:
            raise transport_error(exc) from exc
        return result

    async def redeem(self, flow: Mapping[str, Any], response: Mapping[str, str]) -> Mapping[str, Any]:
        error = response.get("error")
        if error:
            raise SignInAbandoned(_DECLINED.get(error, f"the sign-in did not complete ({error})"))
        if not response.get("code"):
            raise SignInRefused("the sign-in answer carries no authorization code")
        result = await run_in("sign-in", self._redeem, dict(flow), dict(response))
        refused = result.get("error")
        if refused in _CODE_REFUSED:
            codes = ", ".join(f"AADSTS{c}" for c in result.get("error_codes") or [])
            raise SignInRefused(f"{_CODE_REFUSED[str(refused)]}{' (' + codes + ')' if codes else ''}")
        if refused:
            raise refusal(result)
        if "id_token" not in result:
            raise EntraAuthError("Entra ID returned no ID token for the sign-in.")
        return self.validate_id_token(str(result["id_token"]))

    def _probe(self, redirect_uri: str) -> str | None:
        flow = self._initiate(redirect_uri, "", 300, None)
        try:
            page = self._session.get(str(flow["auth_uri"]), allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            raise transport_error(exc) from exc
        found = re.search(r"AADSTS(\d+)", page.text)
        return f"AADSTS{found.group(1)}" if found else None

    async def probe(self, redirect_uri: str) -> str | None:
        """Open the sign-in page as a browser would (nobody signs in): the AADSTS code of the error page
        Entra shows instead (unknown app, redirect URI not registered), or None when the page is a sign-in."""
        return await run_in("sign-in", self._probe, redirect_uri)
