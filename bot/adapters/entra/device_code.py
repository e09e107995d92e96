"""Device-code sign-in of approvers with msal's public client (``DeviceCodeSignIn`` port).

The bot needs only the ID token of the sign-in, once: the app (``entra_approver_app.ApproverApp``)
keeps no token, and checks the ID token.

msal polls in a blocking loop; it runs in a worker thread and is stopped through the flow's
``exit_condition`` when the sign-in is called off.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msal
import requests

from bot.adapters.entra.approver_app import ApproverApp, refusal, transport_error
from bot.adapters.threads import run_in
from bot.domain.errors import EntraAuthError
from bot.domain.verification import DeviceCodePrompt, SignInAbandoned

_ABANDONED = {
    "expired_token": "the sign-in code expired before the sign-in was completed",
    "code_expired": "the sign-in code expired before the sign-in was completed",
    "authorization_declined": "the sign-in was declined",
    "access_denied": "the sign-in was declined or blocked (for example by Conditional Access)",
    "bad_verification_code": "the sign-in code was not recognised",
}


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
            raise transport_error(exc) from exc
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
            raise refusal(result) if error else EntraAuthError("Entra ID returned no ID token for the sign-in.")
        return self._owner.validate_id_token(str(result["id_token"]))


class MsalDeviceCodeSignIn(ApproverApp):
    """``DeviceCodeSignIn`` with a public client app registration (device-code flow allowed)."""

    def _initiate(self) -> dict[str, Any]:
        try:
            flow: dict[str, Any] = self.application().initiate_device_flow(scopes=self._scopes)
        except (requests.exceptions.RequestException, msal.exceptions.MsalServiceError, ValueError) as exc:
            raise transport_error(exc) from exc
        if "user_code" not in flow:
            raise refusal(flow)
        return flow

    async def start(self) -> MsalDeviceCodeSession:
        return MsalDeviceCodeSession(self, await run_in("sign-in", self._initiate))
